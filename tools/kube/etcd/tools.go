//go:build tools

// Package tools only records that this module builds etcd's server binary.
package tools

import _ "go.etcd.io/etcd/server/v3"

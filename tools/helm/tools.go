//go:build tools

// Package tools only records that this module builds helm's command, so that `go mod tidy`
// keeps its dependencies in go.sum.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)

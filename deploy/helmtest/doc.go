// Package helmtest renders hookwire's Helm chart (deploy/helm/hookwire) with
// Helm's own Go packages and checks the result against the Kubernetes API
// types. It is a module of its own so that Helm and the Kubernetes libraries
// stay out of hookwire's go.mod; it holds tests only.
//
//	cd deploy/helmtest && go test ./...           # render and check
//	cd deploy/helmtest && go test ./... -update   # rewrite deploy/k8s/hookwire.yaml
package helmtest

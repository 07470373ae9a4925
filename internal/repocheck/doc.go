// Package repocheck holds tests about the repository as a whole, such as every
// package having a package comment. It has no code of its own.
package repocheck

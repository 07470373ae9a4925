// Package web holds the diagnostic page's assets, embedded in the binary:
// the page that measures in the browser, its script and style, and the
// templates of the report and operator views. Nothing is fetched from
// anywhere else.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static templates
var files embed.FS

// Static returns the files served under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Templates returns the HTML and text templates, by file name.
func Templates() fs.FS {
	sub, err := fs.Sub(files, "templates")
	if err != nil {
		panic(err)
	}
	return sub
}

package main

import (
	"embed"
	"fmt"
	"strings"
	"text/template"
)

// proseFS holds the report's prose: the paragraphs that explain how each
// part measures, with the run's figures filled in by name.
//
//go:embed report/*.tmpl
var proseFS embed.FS

// prose is the parsed set of report/*.tmpl, one named template per
// paragraph group.
var prose = template.Must(template.New("report").Option("missingkey=error").ParseFS(proseFS, "report/*.tmpl"))

// writeProse executes the prose template name with data into b. The
// templates are compiled in and every one is executed by the report tests,
// so a failure is a bug in this program, not in the run.
func writeProse(b *strings.Builder, name string, data any) {
	if err := prose.ExecuteTemplate(b, name, data); err != nil {
		panic(fmt.Sprintf("report template %s: %v", name, err))
	}
}

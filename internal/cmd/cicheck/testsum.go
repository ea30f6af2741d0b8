package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// testsum reads `go test -json` from r and writes a short report to w: the
// ok/FAIL line of every package, the whole output of each failed test or
// package, and a closing count. It returns the exit code.
//
// A race that the testing package reports "outside of test execution"
// fails the package while every test passes, and test2json files the
// race detector's report under whichever test printed last; so the
// reports (from "WARNING: DATA RACE" to the closing "=====" line) of a
// package's passed tests are kept too, and printed if the package fails.
func testsum(r io.Reader, w io.Writer) int {
	var passed, failed, skipped int
	failedPkgs := 0
	output := map[string]*strings.Builder{} // package + "\x00" + test → output so far
	races := map[string]*strings.Builder{}  // package → race reports in passed tests' output
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// Build errors and the like come as plain text.
			fmt.Fprintln(w, string(line))
			continue
		}
		key := e.Package + "\x00" + e.Test
		switch e.Action {
		case "output":
			b := output[key]
			if b == nil {
				b = &strings.Builder{}
				output[key] = b
			}
			b.WriteString(e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				switch e.Action {
				case "pass":
					fmt.Fprintf(w, "ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
				case "skip":
					fmt.Fprintf(w, "?   \t%s\t[no test files]\n", e.Package)
				case "fail":
					failedPkgs++
					if b := races[e.Package]; b != nil {
						fmt.Fprint(w, b.String())
					}
					if b := output[key]; b != nil {
						fmt.Fprint(w, b.String())
					}
					fmt.Fprintf(w, "FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
				}
				delete(races, e.Package)
			} else {
				if b := output[key]; b != nil && e.Action != "fail" {
					if r := raceReports(b.String()); r != "" {
						if races[e.Package] == nil {
							races[e.Package] = &strings.Builder{}
						}
						races[e.Package].WriteString(r)
					}
				}
				switch e.Action {
				case "pass":
					passed++
				case "skip":
					skipped++
				case "fail":
					failed++
					if b := output[key]; b != nil {
						fmt.Fprint(w, b.String())
					}
				}
			}
			delete(output, key)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(w, "cicheck testsum: %v\n", err)
		failedPkgs++
	}
	fmt.Fprintf(w, "tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || failedPkgs > 0 {
		return 1
	}
	return 0
}

// raceReports returns the race detector's reports in out, each from its
// "WARNING: DATA RACE" line to the "==================" line that closes it.
func raceReports(out string) string {
	var b strings.Builder
	for {
		i := strings.Index(out, "WARNING: DATA RACE")
		if i < 0 {
			return b.String()
		}
		out = out[i:]
		end := strings.Index(out, "==================")
		if end < 0 {
			b.WriteString(out)
			return b.String()
		}
		b.WriteString(out[:end+len("==================")] + "\n")
		out = out[end:]
	}
}

// Command cicheck holds the checks of .ci/run that no standard tool makes:
//
//	cicheck doc DIR...     every exported name of every non-main package has a doc comment
//	cicheck static BIN...  each binary is a statically linked ELF file
//	cicheck testsum        summarizes `go test -json` read from standard input
//
// doc and static print one line per problem and exit 1 if there is any.
// testsum prints each package's result line and the output of every failed
// test, then a closing line "tests: N passed, N failed, N skipped"; it exits
// 1 if any test or package failed.
package main

import (
	"debug/elf"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "testsum" {
		os.Exit(testsum(os.Stdin, os.Stdout))
	}
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: cicheck doc DIR... | cicheck static BIN... | cicheck testsum")
		os.Exit(2)
	}
	var problems []string
	switch os.Args[1] {
	case "doc":
		for _, dir := range os.Args[2:] {
			problems = append(problems, checkDocs(dir)...)
		}
	case "static":
		for _, bin := range os.Args[2:] {
			if p := checkStatic(bin); p != "" {
				problems = append(problems, p)
			}
		}
	default:
		fmt.Fprintf(os.Stderr, "cicheck: unknown check %q\n", os.Args[1])
		os.Exit(2)
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
}

// checkDocs reports exported declarations without a doc comment in the
// non-test files of the packages below root, and packages none of whose
// files has a package comment.
func checkDocs(root string) []string {
	var problems []string
	type pkg struct {
		name       string
		documented bool
	}
	pkgs := map[string]*pkg{} // directory → its non-main package
	fset := token.NewFileSet()
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			problems = append(problems, err.Error())
			return nil
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			problems = append(problems, err.Error())
			return nil
		}
		if f.Name.Name == "main" {
			return nil
		}
		dir := filepath.Dir(path)
		p := pkgs[dir]
		if p == nil {
			p = &pkg{name: f.Name.Name}
			pkgs[dir] = p
		}
		p.documented = p.documented || f.Doc != nil
		problems = append(problems, fileDocs(fset, f)...)
		return nil
	})
	for dir, p := range pkgs {
		if !p.documented {
			problems = append(problems, fmt.Sprintf("%s: package %s has no package comment", dir, p.name))
		}
	}
	return problems
}

func fileDocs(fset *token.FileSet, f *ast.File) []string {
	if f.Name.Name == "main" {
		return nil
	}
	var problems []string
	missing := func(pos token.Pos, what string) {
		problems = append(problems, fmt.Sprintf("%s: %s has no doc comment", fset.Position(pos), what))
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || d.Doc != nil {
				continue
			}
			if d.Recv != nil {
				recv := receiverName(d.Recv.List[0].Type)
				if !ast.IsExported(recv) || isStandardMethod(d.Name.Name) {
					continue
				}
				missing(d.Pos(), recv+"."+d.Name.Name)
				continue
			}
			missing(d.Pos(), d.Name.Name)
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() && d.Doc == nil && s.Doc == nil {
						missing(s.Pos(), "type "+s.Name.Name)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() && d.Doc == nil && s.Doc == nil && s.Comment == nil {
							missing(n.Pos(), n.Name)
						}
					}
				}
			}
		}
	}
	return problems
}

// isStandardMethod names methods whose meaning the interface they implement
// documents (error, fmt.Stringer, errors.Unwrap/Is).
func isStandardMethod(name string) bool {
	switch name {
	case "Error", "String", "Unwrap", "Is":
		return true
	}
	return false
}

func receiverName(t ast.Expr) string {
	switch t := t.(type) {
	case *ast.StarExpr:
		return receiverName(t.X)
	case *ast.IndexExpr:
		return receiverName(t.X)
	case *ast.IndexListExpr:
		return receiverName(t.X)
	case *ast.Ident:
		return t.Name
	}
	return ""
}

// checkStatic reports a binary that asks for a dynamic loader or shared
// libraries.
func checkStatic(bin string) string {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Sprintf("%s: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Sprintf("%s: dynamically linked (has an ELF interpreter)", bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Sprintf("%s: dynamically linked against %v", bin, libs)
	}
	return ""
}

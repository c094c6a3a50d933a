package cluster

import (
	"go/ast"
	"go/types"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// vipOwnerRules says where the balancer address may be taken and let go:
// each method of the VIP interface, called on the interface or on any type
// that implements it, only from one function of the VIP owner.
var vipOwnerRules = map[string]string{
	"Acquire": "(*Cluster).takeVIP",
	"Release": "(*Cluster).releaseVIP",
}

// vipOwnerFuncs are the owner goroutine's functions: the ones that call
// the VIP may be called only from these, and runVIPOwner is only started,
// by a go statement in vipOwnerStarter.
var vipOwnerFuncs = map[string]bool{
	"(*Cluster).runVIPOwner":   true,
	"(*Cluster).finishBarrier": true,
	"(*Cluster).serveEarly":    true,
	"(*Cluster).takeVIP":       true,
	"(*Cluster).releaseVIP":    true,
}

// vipOwnerStarter is the one function that starts the owner goroutine (New
// calls it once).
const vipOwnerStarter = "cluster.(*Cluster).startGoroutines"

// TestOnlyTheOwnerTouchesTheVIP type-checks every package of the module
// (test files aside) and fails if anything but the cluster's VIP owner
// goroutine takes or lets go of the balancer address: a call of
// VIP.Acquire or VIP.Release (or of those methods of any VIP
// implementation, such as node/vip's Holder) outside the owner's function
// for it, a call of those functions from outside the owner goroutine's
// functions, or a start of the owner other than vipOwnerStarter's go
// statement.
func TestOnlyTheOwnerTouchesTheVIP(t *testing.T) {
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax |
			packages.NeedTypes | packages.NeedTypesInfo,
		Dir: "..",
	}
	pkgs, err := packages.Load(cfg, "github.com/usherlb/usher/...")
	if err != nil {
		t.Fatal(err)
	}
	var iface *types.Interface
	for _, p := range pkgs {
		for _, e := range p.Errors {
			t.Fatalf("%s: %v", p.PkgPath, e)
		}
		if p.PkgPath == "github.com/usherlb/usher/cluster" {
			iface = p.Types.Scope().Lookup("VIP").Type().Underlying().(*types.Interface)
		}
	}
	if iface == nil {
		t.Fatal("package cluster or its VIP interface not found")
	}
	found := map[string]int{}
	for _, p := range pkgs {
		for _, f := range p.Syntax {
			for _, d := range f.Decls {
				checkVIPUses(t, p, iface, d, found)
			}
		}
	}
	for what, want := range map[string]int{"Acquire": 1, "Release": 1, "go (*Cluster).runVIPOwner": 1} {
		if found[what] != want {
			t.Errorf("found %d uses of %s in the owner, want %d: the check no longer sees the owner", found[what], what, want)
		}
	}
}

// checkVIPUses applies the rules to one top-level declaration of p.
func checkVIPUses(t *testing.T, p *packages.Package, iface *types.Interface, d ast.Decl, found map[string]int) {
	t.Helper()
	where := "a package-level declaration"
	if fd, ok := d.(*ast.FuncDecl); ok {
		where = funcDeclName(p, fd)
	}
	started := map[*ast.Ident]bool{} // runVIPOwner idents called by a go statement
	ast.Inspect(d, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			if se, ok := n.Call.Fun.(*ast.SelectorExpr); ok {
				started[se.Sel] = true
			}
		case *ast.SelectorExpr:
			checkSelector(t, p, iface, n, where, started[n.Sel], found)
		}
		return true
	})
}

// checkSelector applies the rules to one selector x.Sel in function where.
func checkSelector(t *testing.T, p *packages.Package, iface *types.Interface, se *ast.SelectorExpr, where string, goStmt bool, found map[string]int) {
	t.Helper()
	pos := p.Fset.Position(se.Pos())
	fn, ok := p.TypesInfo.Uses[se.Sel].(*types.Func)
	if !ok {
		return
	}
	if allowed, ok := vipOwnerRules[fn.Name()]; ok && implementsVIP(p, se, iface) {
		if where != "cluster."+allowed {
			t.Errorf("%s: %s calls VIP.%s; only the cluster's VIP owner (%s) may", pos, where, fn.Name(), allowed)
			return
		}
		found[fn.Name()]++
		return
	}
	if fn.Pkg() == nil || fn.Pkg().Path() != "github.com/usherlb/usher/cluster" {
		return
	}
	name := methodName(fn)
	switch {
	case name == "(*Cluster).runVIPOwner":
		if !goStmt || where != vipOwnerStarter {
			t.Errorf("%s: %s uses runVIPOwner; only %s starts it, with a go statement", pos, where, vipOwnerStarter)
			return
		}
		found["go "+name]++
	case vipOwnerFuncs[name] && !vipOwnerFuncs[trimPkg(where)]:
		t.Errorf("%s: %s calls %s, which only the VIP owner goroutine may run", pos, where, name)
	}
}

// implementsVIP reports whether se selects a method of a value whose type
// is the VIP interface or implements it.
func implementsVIP(p *packages.Package, se *ast.SelectorExpr, iface *types.Interface) bool {
	sel, ok := p.TypesInfo.Selections[se]
	if !ok {
		return false
	}
	recv := sel.Recv()
	return types.Implements(recv, iface) || types.Implements(types.NewPointer(recv), iface)
}

// funcDeclName names a function as "pkg.Name" or "pkg.(*T).Name".
func funcDeclName(p *packages.Package, fd *ast.FuncDecl) string {
	fn, ok := p.TypesInfo.Defs[fd.Name].(*types.Func)
	if !ok {
		return p.Name + "." + fd.Name.Name
	}
	return p.Name + "." + methodName(fn)
}

// methodName names fn as "Name" or "(*T).Name" / "T.Name".
func methodName(fn *types.Func) string {
	sig := fn.Type().(*types.Signature)
	if sig.Recv() == nil {
		return fn.Name()
	}
	rt := sig.Recv().Type()
	star := ""
	if ptr, ok := rt.(*types.Pointer); ok {
		rt, star = ptr.Elem(), "*"
	}
	if named, ok := rt.(*types.Named); ok {
		return "(" + star + named.Obj().Name() + ")." + fn.Name()
	}
	return fn.Name()
}

// trimPkg drops the "cluster." prefix of a function name in this package.
func trimPkg(where string) string {
	return strings.TrimPrefix(where, "cluster.")
}

// lua-health runs an Argo CD resource health script the way Argo CD runs a custom
// (argocd-cm) health check, and prints the health it would show:
//
//	lua-health SCRIPT.lua OBJECT.json   ("-" for either reads stdin)
//	{"status":"Healthy","message":"..."}
//
// It mirrors argo-cd v3.6.1 util/lua (lua.go, oslib_safe.go), read for this purpose:
//   - gopher-lua and gopher-json at the versions argo-cd v3.6.1's go.mod pins (see go.mod here);
//   - lua.NewState with SkipOpenLibs (resource.customizations.useOpenLibs is not set), then
//     only the package, base and table libraries are opened;
//   - no global `os`: Argo CD's OpenSafeOs calls RegisterModule under the table library's
//     name, which does nothing once table is loaded; only `require("os")` works, and returns
//     a table with just time and date. No string, math, io, debug, coroutine or channel
//     library, and no `json` module (gopher-json only encodes the returned table, in Go);
//   - the object as the global `obj`, JSON numbers as Lua numbers (what decoding an
//     unstructured object gives), a 1 s context deadline;
//   - the value the chunk returns, encoded with gopher-json and decoded into
//     {status, message}; a status Argo CD does not know becomes Unknown with Argo CD's
//     message, an empty table an empty health, and nil no health ("null").
//
// Errors (a syntax error, a runtime error, a non-table result) go to stderr with exit code 1:
// Argo CD would show them as a health assessment error.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
)

// health is gitops-engine's HealthStatus as Argo CD fills it from the script's table.
type health struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

var knownStatuses = map[string]bool{"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: lua-health SCRIPT.lua OBJECT.json (- for stdin)")
		os.Exit(2)
	}
	script, err := readArg(os.Args[1])
	if err == nil {
		var object []byte
		if object, err = readArg(os.Args[2]); err == nil {
			var out []byte
			if out, err = run(string(script), object); err == nil {
				fmt.Println(string(out))
				return
			}
		}
	}
	fmt.Fprintln(os.Stderr, "lua-health:", err)
	os.Exit(1)
}

func readArg(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}

func run(script string, object []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(object))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("the object is not a JSON object: %w", err)
	}

	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, fmt.Errorf("opening %q: %w", lib.name, err)
		}
	}
	safeOs := safeOsFuncs()
	l.PreloadModule(lua.OsLibName, func(l *lua.LState) int {
		l.Push(l.SetFuncs(l.NewTable(), safeOs))
		return 1
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))

	fn, err := l.LoadString(script)
	if err != nil {
		return nil, err
	}
	l.Push(fn)
	if err := l.PCall(0, lua.MultRet, nil); err != nil {
		return nil, err
	}
	result := l.Get(-1)
	switch result.Type() {
	case lua.LTNil:
		return []byte("null"), nil
	case lua.LTTable:
	default:
		return nil, fmt.Errorf("expect table output from Lua script, not %s", result.Type())
	}
	encoded, err := luajson.Encode(result)
	if err != nil {
		return nil, err
	}
	var h health
	if err := json.Unmarshal(encoded, &h); err != nil {
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) || typeErr.Value != "array" {
			return nil, err
		}
		h = health{} // an empty table encodes as [], which Argo CD takes as an empty health
	} else if !knownStatuses[h.Status] {
		h = health{Status: "Unknown", Message: "Lua returned an invalid health status"}
	}
	return json.Marshal(h)
}

// safeOsFuncs returns gopher-lua's own os.time and os.date (Argo CD's safe os library is a copy
// of these two), taken from a scratch state so that nothing else of the os library is reachable.
func safeOsFuncs() map[string]lua.LGFunction {
	scratch := lua.NewState()
	defer scratch.Close()
	osTable := scratch.GetGlobal(lua.OsLibName).(*lua.LTable)
	funcs := map[string]lua.LGFunction{}
	for _, name := range []string{"time", "date"} {
		funcs[name] = osTable.RawGetString(name).(*lua.LFunction).GFunction
	}
	return funcs
}

// toLua converts a decoded JSON value as Argo CD converts an unstructured object: numbers
// become Lua numbers, arrays sequences, objects tables, null nil.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return lua.LNumber(i)
		}
		f, _ := v.Float64()
		return lua.LNumber(f)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(toLua(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), toLua(l, item))
		}
		return tbl
	}
	return lua.LNil
}

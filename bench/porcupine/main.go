// Command porcupine-check checks register histories in the project's JSON Lines format
// (docs/history-format.md) with porcupine, the reference linearizability checker, so that
// bench/checker.ts can compare our checker with it on the same files.
//
// Usage: porcupine-check [-timeout 60s] [-reps 1] [-keep-unknown-reads] FILE...
//
// Each file holds operations on one key: get (a range without end), put, and compare-and-set
// (a txn comparing the value with "=" and putting on success, with an empty failure branch).
// An operation whose outcome is unknown ("return": null, no response) gets a return after every
// other event and an output that any state accepts, so it may take effect at any time after its
// call, or never (linearized last, nothing observes it). An unknown-outcome get changes nothing and
// accepts any output, so it is dropped (-keep-unknown-reads keeps it, as porcupine's own Jepsen test
// does; the verdict is the same, but every such read doubles the states an illegal history explores).
// An error response proves the request was not applied, so the operation is dropped too.
//
// Prints one JSON line per file (per repetition with -reps > 1):
//
//	{"file":"...","result":"ok"|"illegal"|"unknown","ns":123}
//
// where ns is the time of the check call alone (reading and converting the file is not timed).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
)

type opKind uint8

const (
	opGet opKind = iota
	opPut
	opCas
)

type input struct {
	kind  opKind
	value string // put: the value; cas: the expected value
	to    string // cas: the new value
}

type output struct {
	unknown   bool
	exists    bool   // get
	value     string // get
	succeeded bool   // cas
}

// state is the register: absent, or a value. Comparable, so porcupine's default == works.
type state struct {
	exists bool
	value  string
}

var registerModel = porcupine.Model{
	Init: func() interface{} { return state{} },
	Step: func(st, in, out interface{}) (bool, interface{}) {
		s := st.(state)
		i := in.(input)
		o := out.(output)
		switch i.kind {
		case opGet:
			return o.unknown || (o.exists == s.exists && (!s.exists || o.value == s.value)), s
		case opPut:
			return true, state{exists: true, value: i.value}
		default:
			applies := s.exists && s.value == i.value
			next := s
			if applies {
				next = state{exists: true, value: i.to}
			}
			return o.unknown || o.succeeded == applies, next
		}
	},
	DescribeOperation: func(in, out interface{}) string {
		i := in.(input)
		o := out.(output)
		switch i.kind {
		case opGet:
			if o.unknown {
				return "get() -> ?"
			}
			if !o.exists {
				return "get() -> absent"
			}
			return fmt.Sprintf("get() -> %q", o.value)
		case opPut:
			return fmt.Sprintf("put(%q)", i.value)
		default:
			r := "?"
			if !o.unknown {
				r = fmt.Sprint(o.succeeded)
			}
			return fmt.Sprintf("cas(%q, %q) -> %s", i.value, i.to, r)
		}
	},
	DescribeState: func(st interface{}) string {
		s := st.(state)
		if !s.exists {
			return "absent"
		}
		return fmt.Sprintf("%q", s.value)
	},
}

type jsonRequest struct {
	Type    string        `json:"type"`
	Key     string        `json:"key"`
	End     *string       `json:"end"`
	Value   string        `json:"value"`
	Compare []jsonCompare `json:"compare"`
	Success []jsonRequest `json:"success"`
	Failure []jsonRequest `json:"failure"`
}

type jsonCompare struct {
	Key    string          `json:"key"`
	Target string          `json:"target"`
	Result string          `json:"result"`
	Value  json.RawMessage `json:"value"`
}

type jsonKV struct {
	Key   string  `json:"key"`
	Value *string `json:"value"`
}

type jsonResponse struct {
	Error     *string  `json:"error"`
	Kvs       []jsonKV `json:"kvs"`
	Succeeded *bool    `json:"succeeded"`
}

type jsonLine struct {
	Kind     *string       `json:"kind"`
	Client   int           `json:"client"`
	Call     int64         `json:"call"`
	Return   *int64        `json:"return"`
	Request  jsonRequest   `json:"request"`
	Response *jsonResponse `json:"response"`
}

// readHistory converts a JSON Lines register history into porcupine operations.
func readHistory(path string, keepUnknownReads bool) ([]porcupine.Operation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []jsonLine
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 1<<26)
	n := 0
	for scanner.Scan() {
		n++
		text := scanner.Bytes()
		if len(text) == 0 {
			continue
		}
		var l jsonLine
		if err := json.Unmarshal(text, &l); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		if l.Kind != nil {
			if *l.Kind == "meta" {
				continue
			}
			return nil, fmt.Errorf("%s:%d: lines of kind %q are not supported", path, n, *l.Kind)
		}
		lines = append(lines, l)
	}
	if err := scanner.Err(); err != nil {
		return nil, err
	}

	var maxTime int64
	for _, l := range lines {
		maxTime = max(maxTime, l.Call)
		if l.Return != nil {
			maxTime = max(maxTime, *l.Return)
		}
	}
	key := ""
	ops := make([]porcupine.Operation, 0, len(lines))
	for idx, l := range lines {
		in, k, err := toInput(l.Request)
		if err != nil {
			return nil, fmt.Errorf("%s: operation %d: %v", path, idx, err)
		}
		if key == "" {
			key = k
		} else if k != key {
			return nil, fmt.Errorf("%s: operation %d: key %q, but the register is %q (one key per history)", path, idx, k, key)
		}
		op := porcupine.Operation{ClientId: l.Client, Input: in, Call: l.Call}
		switch {
		case (l.Return == nil || l.Response == nil) && in.kind == opGet && !keepUnknownReads:
			continue // an unknown-outcome read changes nothing and accepts any output: it cannot constrain the history
		case l.Return == nil || l.Response == nil:
			// Unknown outcome: may take effect at any point after the call, or never.
			op.Return = maxTime + 1
			op.Output = output{unknown: true}
		case l.Response.Error != nil:
			continue // a definite failure: not applied
		default:
			op.Return = *l.Return
			out, err := toOutput(in, *l.Response)
			if err != nil {
				return nil, fmt.Errorf("%s: operation %d: %v", path, idx, err)
			}
			op.Output = out
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func toInput(r jsonRequest) (input, string, error) {
	switch r.Type {
	case "range":
		if r.End != nil {
			return input{}, "", fmt.Errorf("a range with an end is not a register get")
		}
		return input{kind: opGet}, r.Key, nil
	case "put":
		return input{kind: opPut, value: r.Value}, r.Key, nil
	case "txn":
		if len(r.Compare) != 1 || len(r.Success) != 1 || len(r.Failure) != 0 {
			return input{}, "", fmt.Errorf("a txn must be a compare-and-set: one compare, one put on success, nothing on failure")
		}
		c, p := r.Compare[0], r.Success[0]
		var from string
		if c.Target != "value" || c.Result != "=" || json.Unmarshal(c.Value, &from) != nil {
			return input{}, "", fmt.Errorf("a compare-and-set compares the value with \"=\" and a string")
		}
		if p.Type != "put" || p.Key != c.Key {
			return input{}, "", fmt.Errorf("a compare-and-set puts the compared key on success")
		}
		return input{kind: opCas, value: from, to: p.Value}, c.Key, nil
	default:
		return input{}, "", fmt.Errorf("request type %q is not a register operation", r.Type)
	}
}

func toOutput(in input, r jsonResponse) (output, error) {
	switch in.kind {
	case opGet:
		switch len(r.Kvs) {
		case 0:
			return output{}, nil
		case 1:
			if r.Kvs[0].Value == nil {
				return output{}, fmt.Errorf("a get answer without a value")
			}
			return output{exists: true, value: *r.Kvs[0].Value}, nil
		default:
			return output{}, fmt.Errorf("a get answered %d keys", len(r.Kvs))
		}
	case opPut:
		return output{}, nil
	default:
		if r.Succeeded == nil {
			return output{}, fmt.Errorf("a compare-and-set answer without succeeded")
		}
		return output{succeeded: *r.Succeeded}, nil
	}
}

type resultLine struct {
	File   string `json:"file"`
	Result string `json:"result"`
	Ns     int64  `json:"ns"`
	Rep    *int   `json:"rep,omitempty"`
}

func main() {
	timeout := flag.Duration("timeout", 0, "give up on one history after this long (0: never); the result is then \"unknown\"")
	keepUnknownReads := flag.Bool("keep-unknown-reads", false, "keep unknown-outcome gets (as always-accepted operations) instead of dropping them; same verdicts, much slower on illegal histories")
	reps := flag.Int("reps", 1, "check every file this many times (all files once, then again); lines then carry \"rep\"")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: %s [-timeout D] [-reps N] [-keep-unknown-reads] FILE...\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || *reps < 1 {
		flag.Usage()
		os.Exit(2)
	}
	files := flag.Args()
	histories := make([][]porcupine.Operation, len(files))
	for i, path := range files {
		ops, err := readHistory(path, *keepUnknownReads)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		histories[i] = ops
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for rep := 0; rep < *reps; rep++ {
		for i, path := range files {
			start := time.Now()
			res := porcupine.CheckOperationsTimeout(registerModel, histories[i], *timeout)
			ns := time.Since(start).Nanoseconds()
			line := resultLine{File: path, Ns: ns}
			switch res {
			case porcupine.Ok:
				line.Result = "ok"
			case porcupine.Illegal:
				line.Result = "illegal"
			default:
				line.Result = "unknown"
			}
			if *reps > 1 {
				r := rep
				line.Rep = &r
			}
			if err := enc.Encode(line); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
	}
}

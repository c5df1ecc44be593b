// Checks WhiteBalloon's transparency-log artefacts with the Go reference code
// (golang.org/x/mod/sumdb/note and sumdb/tlog). Reads one JSON case on stdin and
// prints {"errors": [...]} naming every check that failed; exit status 0 either way
// unless the input itself is unreadable.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusion struct {
	Index int64    `json:"index"`
	Size  int64    `json:"size"`
	Root  string   `json:"root"`
	Leaf  string   `json:"leaf"`
	Proof []string `json:"proof"`
}

type consistency struct {
	Old     int64    `json:"old"`
	New     int64    `json:"new"`
	OldRoot string   `json:"old_root"`
	NewRoot string   `json:"new_root"`
	Proof   []string `json:"proof"`
}

type input struct {
	VKey        string            `json:"vkey"`
	Notes       []string          `json:"notes"`
	Entries     []string          `json:"entries"`
	Inclusion   []inclusion       `json:"inclusion"`
	Consistency []consistency     `json:"consistency"`
	Tiles       map[string]string `json:"tiles"`
	TileSize    int64             `json:"tile_size"`
	TileRoot    string            `json:"tile_root"`
}

var errs []string

func fail(format string, args ...interface{}) { errs = append(errs, fmt.Sprintf(format, args...)) }

func b64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		fail("base64 %q: %v", s, err)
	}
	return b
}

func hash(s string) tlog.Hash {
	var h tlog.Hash
	copy(h[:], b64(s))
	return h
}

func hashes(list []string) []tlog.Hash {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		out[i] = hash(s)
	}
	return out
}

type memory []tlog.Hash

func (m memory) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= int64(len(m)) {
			return nil, fmt.Errorf("no stored hash %d", x)
		}
		out[i] = m[x]
	}
	return out, nil
}

type tiles struct{ data map[string][]byte }

func (t tiles) Height() int { return 8 }

// C2SP tlog-tiles paths leave out the height that Go's sumdb paths carry.
func c2sp(tile tlog.Tile) string {
	return strings.Replace(tile.Path(), "tile/8/", "tile/", 1)
}

func (t tiles) ReadTiles(list []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(list))
	for i, tile := range list {
		d, ok := t.data[c2sp(tile)]
		if !ok {
			return nil, fmt.Errorf("tile %s not served", c2sp(tile))
		}
		out[i] = d
	}
	return out, nil
}

func (t tiles) SaveTiles([]tlog.Tile, [][]byte) {}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var verifier note.Verifier
	if in.VKey != "" {
		v, err := note.NewVerifier(in.VKey)
		if err != nil {
			fail("verifier key: %v", err)
		}
		verifier = v
	}
	for i, text := range in.Notes {
		if verifier == nil {
			break
		}
		n, err := note.Open([]byte(text), note.VerifierList(verifier))
		if err != nil {
			fail("note %d: %v", i, err)
			continue
		}
		lines := strings.Split(n.Text, "\n")
		if len(lines) < 4 {
			fail("note %d: not a checkpoint", i)
			continue
		}
		if _, err := strconv.ParseInt(lines[1], 10, 64); err != nil {
			fail("note %d: size: %v", i, err)
		}
		if len(b64(lines[2])) != 32 {
			fail("note %d: root is not 32 bytes", i)
		}
	}
	// The stored hashes of the whole tree, computed by Go from the entries.
	var stored memory
	for i, e := range in.Entries {
		hs, err := tlog.StoredHashes(int64(i), b64(e), stored)
		if err != nil {
			fail("stored hashes %d: %v", i, err)
			break
		}
		stored = append(stored, hs...)
	}
	n := int64(len(in.Entries))
	for i, c := range in.Inclusion {
		if err := tlog.CheckRecord(tlog.RecordProof(hashes(c.Proof)), c.Size, hash(c.Root), c.Index,
			tlog.RecordHash(b64(c.Leaf))); err != nil {
			fail("inclusion %d: %v", i, err)
		}
		if c.Size <= n {
			want, err := tlog.ProveRecord(c.Size, c.Index, stored)
			if err != nil || len(want) != len(c.Proof) {
				fail("inclusion %d: Go proves it differently (%v)", i, err)
				continue
			}
			for j := range want {
				if want[j] != hash(c.Proof[j]) {
					fail("inclusion %d: hash %d differs from Go's", i, j)
				}
			}
			root, _ := tlog.TreeHash(c.Size, stored)
			if root != hash(c.Root) {
				fail("inclusion %d: root differs from Go's", i)
			}
		}
	}
	for i, c := range in.Consistency {
		if err := tlog.CheckTree(tlog.TreeProof(hashes(c.Proof)), c.New, hash(c.NewRoot), c.Old,
			hash(c.OldRoot)); err != nil {
			fail("consistency %d: %v", i, err)
		}
		if c.New <= n {
			want, err := tlog.ProveTree(c.New, c.Old, stored)
			if err != nil || len(want) != len(c.Proof) {
				fail("consistency %d: Go proves it differently (%v)", i, err)
				continue
			}
			for j := range want {
				if want[j] != hash(c.Proof[j]) {
					fail("consistency %d: hash %d differs from Go's", i, j)
				}
			}
		}
	}
	if len(in.Tiles) > 0 {
		data := map[string][]byte{}
		for path, d := range in.Tiles {
			data[path] = b64(d)
		}
		tr := tiles{data}
		tree := tlog.Tree{N: in.TileSize, Hash: hash(in.TileRoot)}
		thr := tlog.TileHashReader(tree, tr)
		// every stored hash of a sample of leaves, each checked against the signed tree
		var indexes []int64
		for k := int64(0); k < in.TileSize; k += 1 + in.TileSize/97 {
			for lvl := 0; (k>>uint(lvl)+1)<<uint(lvl) <= in.TileSize; lvl++ {
				indexes = append(indexes, tlog.StoredHashIndex(lvl, k>>uint(lvl)))
			}
		}
		got, err := thr.ReadHashes(indexes)
		if err != nil {
			fail("tiles: %v", err)
		} else if int64(len(stored)) >= tlog.StoredHashCount(in.TileSize) {
			for i, x := range indexes {
				if got[i] != stored[x] {
					fail("tiles: stored hash %d differs", x)
				}
			}
		}
		for path, d := range data {
			if strings.HasPrefix(path, "tile/entries/") {
				continue
			}
			tile, err := tlog.ParseTilePath(strings.Replace(path, "tile/", "tile/8/", 1))
			if err != nil {
				fail("tile path %s: %v", path, err)
				continue
			}
			want, err := tlog.ReadTileData(tile, stored)
			if err == nil && !bytes.Equal(want, d) {
				fail("tile %s: bytes differ from Go's", path)
			}
		}
	}
	if errs == nil {
		errs = []string{}
	}
	json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"errors": errs})
}

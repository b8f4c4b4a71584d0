// Command trimschema cuts OVHcloud's published API descriptions (https://eu.api.ovh.com/1.0/
// auth.json, me.json, order.json, vps.json) down to the parts clawdeploy orders VPSes with,
// keeping every operation of the paths kept and every model they reach, unchanged, and writes
// them to internal/ovhfake/schema. Its input is the four descriptions as OVHcloud serves them,
// or as api-ovh-node's generated models carry them (code/gen/models/ovh-api/NAME.ts, the JSON
// after "export const schema: Schema ="):
//
//	go run ./internal/ovhfake/trimschema DIR
//
// What is kept is decided by the path families below, not by what the code calls today, so that
// the schema test catches a call to an operation the description does not have.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// keep names, per description, the path families kept: a path is kept when it equals one of
// them or starts with one that ends in "/".
var keep = map[string][]string{
	"auth":  {"/auth/time"},
	"me":    {"/me", "/me/order", "/me/order/"},
	"order": {"/order/cart", "/order/cart/{cartId}", "/order/cart/{cartId}/assign", "/order/cart/{cartId}/checkout", "/order/cart/{cartId}/item/", "/order/cart/{cartId}/vps", "/order/cart/{cartId}/vps/", "/order/catalog/public/vps"},
	"vps":   {"/vps", "/vps/"},
}

func kept(name, path string) bool {
	for _, k := range keep[name] {
		if path == k || (strings.HasSuffix(k, "/") && strings.HasPrefix(path, k)) {
			return true
		}
	}
	return false
}

var typeName = regexp.MustCompile(`[A-Za-z][A-Za-z0-9_.]*`)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: trimschema DIR (holding auth, me, order and vps as .json or api-ovh-node's .ts)")
		os.Exit(2)
	}
	for name := range keep {
		if err := trim(os.Args[1], name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func trim(dir, name string) error {
	raw, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if os.IsNotExist(err) {
		raw, err = os.ReadFile(filepath.Join(dir, name+".ts"))
		if _, after, ok := bytes.Cut(raw, []byte("export const schema: Schema =")); ok {
			raw = bytes.TrimRight(bytes.TrimSpace(after), ";")
		}
	}
	if err != nil {
		return err
	}
	var full struct {
		APIVersion   string                     `json:"apiVersion"`
		BasePath     string                     `json:"basePath"`
		ResourcePath string                     `json:"resourcePath"`
		APIs         []map[string]any           `json:"apis"`
		Models       map[string]json.RawMessage `json:"models"`
	}
	if err := json.Unmarshal(raw, &full); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	out := full
	out.APIs, out.Models = nil, map[string]json.RawMessage{}
	var queue []string
	for _, api := range full.APIs {
		if !kept(name, api["path"].(string)) {
			continue
		}
		out.APIs = append(out.APIs, api)
		b, _ := json.Marshal(api["operations"])
		queue = append(queue, typeName.FindAllString(string(b), -1)...)
	}
	for len(queue) > 0 {
		t := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		m, ok := full.Models[t]
		if _, done := out.Models[t]; !ok || done {
			continue
		}
		out.Models[t] = m
		queue = append(queue, typeName.FindAllString(string(m), -1)...)
	}
	slices.SortFunc(out.APIs, func(a, b map[string]any) int { return strings.Compare(a["path"].(string), b["path"].(string)) })
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		return err
	}
	dst := filepath.Join("internal", "ovhfake", "schema", name+".json")
	fmt.Printf("%s: %d of %d paths, %d of %d models\n", dst, len(out.APIs), len(full.APIs), len(out.Models), len(full.Models))
	return os.WriteFile(dst, append(b, '\n'), 0o644)
}

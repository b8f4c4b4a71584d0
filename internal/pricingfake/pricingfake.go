// Package pricingfake is AWS's Price List Query API (moto has none), in the shapes AWS documents
// (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html):
// GetProducts over the awsJson1_1 protocol (POST /, X-Amz-Target:
// AWSPriceListService.GetProducts), TERM_MATCH filters on the product's attributes (regionCode
// among them), and a PriceList of JSON strings, each a product with its attributes and its
// OnDemand terms (priceDimensions with unit, beginRange and pricePerUnit in USD), MaxResults per
// page with a NextToken. Point the SDK at it with AWS_ENDPOINT_URL_PRICING.
package pricingfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Product is one product of the catalog: its service, attributes and on-demand price.
type Product struct {
	Service    string
	Attributes map[string]string
	Unit       string
	USD        string
}

// Server is a running fake.
type Server struct {
	URL string

	mu       sync.Mutex
	products []Product
	denied   bool
	calls    int
}

// Start serves the fake until the test ends.
func Start(t testing.TB, products ...Product) *Server {
	t.Helper()
	s := &Server{products: products}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Deny makes every later call fail as for a role without pricing:GetProducts.
func (s *Server) Deny() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied = true
}

// Calls counts the GetProducts calls served.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

type request struct {
	ServiceCode string `json:"ServiceCode"`
	Filters     []struct {
		Type  string `json:"Type"`
		Field string `json:"Field"`
		Value string `json:"Value"`
	} `json:"Filters"`
	MaxResults int    `json:"MaxResults"`
	NextToken  string `json:"NextToken"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "AWSPriceListService.GetProducts" {
		fail(w, http.StatusBadRequest, "UnknownOperationException", "only GetProducts is served here")
		return
	}
	s.calls++
	if s.denied {
		fail(w, http.StatusBadRequest, "AccessDeniedException",
			"User: arn:aws:sts::123456789012:assumed-role/preview/ci is not authorized to perform: pricing:GetProducts")
		return
	}
	var in request
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.ServiceCode == "" {
		fail(w, http.StatusBadRequest, "InvalidParameterException", "ServiceCode is required")
		return
	}
	var matched []Product
	for _, p := range s.products {
		if p.Service != in.ServiceCode {
			continue
		}
		ok := true
		for _, f := range in.Filters {
			if f.Type != "TERM_MATCH" || !strings.EqualFold(p.Attributes[f.Field], f.Value) {
				ok = false
			}
		}
		if ok {
			matched = append(matched, p)
		}
	}
	start, _ := strconv.Atoi(in.NextToken)
	size := in.MaxResults
	if size <= 0 || size > 100 {
		size = 100
	}
	end := min(start+size, len(matched))
	out := map[string]any{"FormatVersion": "aws_v1", "PriceList": []string{}}
	list := []string{}
	for i := start; i < end; i++ {
		list = append(list, document(matched[i], i))
	}
	out["PriceList"] = list
	if end < len(matched) {
		out["NextToken"] = strconv.Itoa(end)
	}
	_ = json.NewEncoder(w).Encode(out)
}

// document is a product as the Price List's aws_v1 format gives it.
func document(p Product, i int) string {
	sku := fmt.Sprintf("SKU%06d", i)
	attrs := map[string]string{"servicecode": p.Service}
	for k, v := range p.Attributes {
		attrs[k] = v
	}
	doc := map[string]any{
		"product":         map[string]any{"sku": sku, "productFamily": attrs["productFamily"], "attributes": attrs},
		"serviceCode":     p.Service,
		"version":         "20261101000000",
		"publicationDate": "2026-11-01T00:00:00Z",
		"terms": map[string]any{"OnDemand": map[string]any{sku + ".JRTCKXETXF": map[string]any{
			"offerTermCode": "JRTCKXETXF", "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z",
			"priceDimensions": map[string]any{sku + ".JRTCKXETXF.6YS6EN2CT7": map[string]any{
				"unit": p.Unit, "beginRange": "0", "endRange": "Inf", "description": "on demand",
				"pricePerUnit": map[string]string{"USD": p.USD},
			}},
		}}},
	}
	b, _ := json.Marshal(doc)
	return string(b)
}

func fail(w http.ResponseWriter, code int, typ, message string) {
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "Message": message})
}

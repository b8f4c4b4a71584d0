// Package spotpricefake is a fake of EC2's DescribeSpotPriceHistory on a loopback port, for tests
// of what reads Spot prices: moto's history is one fixed price dated 2006. It speaks the EC2 Query
// protocol as the SDK does (a form POST with Action and Version; an XML answer in the 2016-11-15
// namespace), filters by InstanceType.N, AvailabilityZone, ProductDescription.N, StartTime and
// EndTime as EC2 documents, returns the newest prices first and, as EC2 does, the last price set
// before StartTime (the price in force then), and pages by MaxResults and NextToken. Any other
// action is an UnsupportedOperation error. Point an SDK at it with AWS_ENDPOINT_URL_EC2.
package spotpricefake

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Price is one entry of the history: the price set at At for a type in a zone (Linux/UNIX).
type Price struct {
	InstanceType, Zone string
	Price              float64
	At                 time.Time
}

// Server is the fake.
type Server struct {
	URL    string
	prices []Price
	mu     sync.Mutex
	calls  int
}

// Start serves prices until the test ends.
func Start(t testing.TB, prices ...Price) *Server {
	t.Helper()
	s := &Server{prices: slices.Clone(prices)}
	slices.SortStableFunc(s.prices, func(a, b Price) int { return b.At.Compare(a.At) })
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Calls counts the DescribeSpotPriceHistory requests answered, pages included.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

type item struct {
	AvailabilityZone   string `xml:"availabilityZone"`
	InstanceType       string `xml:"instanceType"`
	ProductDescription string `xml:"productDescription"`
	SpotPrice          string `xml:"spotPrice"`
	Timestamp          string `xml:"timestamp"`
}

type response struct {
	XMLName   xml.Name `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeSpotPriceHistoryResponse"`
	RequestID string   `xml:"requestId"`
	Items     []item   `xml:"spotPriceHistorySet>item"`
	NextToken string   `xml:"nextToken"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		fail(w, http.StatusBadRequest, "InvalidParameterValue", err.Error())
		return
	}
	if a := r.Form.Get("Action"); a != "DescribeSpotPriceHistory" {
		fail(w, http.StatusBadRequest, "UnsupportedOperation", "the fake answers DescribeSpotPriceHistory only, not "+a)
		return
	}
	types, products := list(r, "InstanceType"), list(r, "ProductDescription")
	zone := r.Form.Get("AvailabilityZone")
	start, end := time.Time{}, time.Now().Add(time.Hour)
	for name, into := range map[string]*time.Time{"StartTime": &start, "EndTime": &end} {
		if v := r.Form.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				fail(w, http.StatusBadRequest, "InvalidParameterValue", name+": "+err.Error())
				return
			}
			*into = t
		}
	}
	// Every price here is Linux/UNIX's.
	linux := len(products) == 0 || slices.Contains(products, "Linux/UNIX")
	var matched []Price
	inForce := map[string]bool{}
	for _, p := range s.prices {
		if !linux || (len(types) > 0 && !slices.Contains(types, p.InstanceType)) || (zone != "" && p.Zone != zone) || p.At.After(end) {
			continue
		}
		if p.At.Before(start) {
			// Only the newest price before StartTime: the one in force at StartTime.
			if key := p.InstanceType + " " + p.Zone; !inForce[key] {
				inForce[key] = true
				matched = append(matched, p)
			}
			continue
		}
		matched = append(matched, p)
	}
	from, _ := strconv.Atoi(r.Form.Get("NextToken"))
	size := 1000
	if v, err := strconv.Atoi(r.Form.Get("MaxResults")); err == nil && v > 0 {
		size = v
	}
	out := response{RequestID: "spotpricefake"}
	for i := from; i < len(matched) && i < from+size; i++ {
		p := matched[i]
		out.Items = append(out.Items, item{AvailabilityZone: p.Zone, InstanceType: p.InstanceType, ProductDescription: "Linux/UNIX",
			SpotPrice: strconv.FormatFloat(p.Price, 'f', 6, 64), Timestamp: p.At.UTC().Format("2006-01-02T15:04:05.000Z")})
	}
	if from+size < len(matched) {
		out.NextToken = strconv.Itoa(from + size)
	}
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(out)
}

// list reads a Query list parameter: name.1, name.2, …
func list(r *http.Request, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v := r.Form.Get(fmt.Sprintf("%s.%d", name, i))
		if v == "" {
			return out
		}
		out = append(out, v)
	}
}

// fail answers as EC2 does: an XML Response with one Error.
func fail(w http.ResponseWriter, code int, typ, message string) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(code)
	_, _ = fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>spotpricefake</RequestID></Response>`, typ, message)
}

package ec2spot

import (
	"regexp"
	"slices"
	"testing"
)

// The configuration a risk's reason names is configuration the program reads: a reviewer told
// "config: spot_max_price" looks for a key that does not exist.
func TestRisksNameKeysThatExist(t *testing.T) {
	key := regexp.MustCompile(`\b[a-z]+(?:_[a-z]+)+\b`)
	for property, config := range configOfProperty {
		for _, k := range key.FindAllString(config, -1) {
			if !slices.Contains(Keys, k) {
				t.Errorf("the replacement of %s names config %q, which is not one of the ec2-spot keys %v", property, k, Keys)
			}
		}
	}
}

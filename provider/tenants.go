package provider

import (
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/tokenbroker/tokenbroker/config"
)

// TenantDirectory is how a vendor's MSP API lists an MSP's tenants, a page
// at a time.
type TenantDirectory struct {
	// Path is the list call's path under the API base.
	Path string
	// PageSize is the most the vendor returns per call (asking for more is
	// an error at Aruba: 400 LIMIT_REQUEST_EXCEEDED).
	PageSize int
	// Parse reads one page: its tenants and the vendor's total.
	Parse func(body []byte) (page []config.Tenant, total int, err error)
}

// Page is the query of the page starting at offset.
func (d *TenantDirectory) Page(offset int) string {
	return d.Path + "?" + url.Values{"offset": {fmt.Sprint(offset)}, "limit": {fmt.Sprint(d.PageSize)}}.Encode()
}

// arubaCustomers is Aruba Central's `GET /msp_api/v1/customers` (seed 004;
// pycentral's msp module reads the same fields).
var arubaCustomers = &TenantDirectory{
	Path:     "/msp_api/v1/customers",
	PageSize: 50,
	Parse: func(body []byte) ([]config.Tenant, int, error) {
		var v struct {
			Customers []struct {
				ID   string `json:"customer_id"`
				Name string `json:"customer_name"`
			} `json:"customers"`
			Total *int `json:"total"`
		}
		if err := json.Unmarshal(body, &v); err != nil || v.Total == nil {
			return nil, 0, fmt.Errorf("the customer list is not {\"customers\": [...], \"total\": N}")
		}
		out := make([]config.Tenant, len(v.Customers))
		for i, c := range v.Customers {
			out[i] = config.Tenant{ID: c.ID, Name: c.Name}
		}
		return out, *v.Total, nil
	},
}

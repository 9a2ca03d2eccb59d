package provider

import (
	"sort"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Vendor is everything that differs between token endpoints, as data.
type Vendor struct {
	ID      string // the `provider:` value
	Display string
	// Regions maps a region name to its hosts. DefaultRegion is used when
	// the profile names none; "" means a region or base_url is required.
	Regions       map[string]Region
	DefaultRegion string
	RegionKey     string // the config key that picks the region ("region", "environment")
	// TokenPath is the token endpoint's path on the token host; {tenant_id}
	// is replaced by the profile's tenant.
	TokenPath string
	// ClientAuth is pinned per vendor, never auto-detected: a retry in the
	// other style would re-send a single-use refresh token.
	ClientAuth oauth2.AuthStyle
	// PrimaryGrant is how a token is had without a refresh token:
	// "client_credentials", "jwt_bearer", or "" (only login or import).
	PrimaryGrant string
	// RefreshInQuery sends refresh parameters in the query string with an
	// empty body, as Aruba's reference SDK does.
	RefreshInQuery bool
	Refreshable    bool // the vendor issues refresh tokens
	// RefreshFallback: the vendor's rules make it safe to present the
	// refresh token before the newest when the newest is refused (Aruba:
	// the old one lives until the new one is used). Servers with reuse
	// detection revoke the whole chain when an old one comes back.
	RefreshFallback bool
	RefreshIdle     time.Duration // refresh tokens die when unused this long
	Header          string        // how the token is attached
	TenantHeader    string        // header carrying delegate_tenant, "" when none
	// CredentialPaths are the vendor API paths that hand out or change
	// credentials (token, login, webhook signing tokens), as segment
	// patterns: a client that may only call the proxy is refused them.
	CredentialPaths []string
	// Tenants lists an MSP's tenants through the vendor's API (`tenants:
	// discover`); nil where the API documents no such call.
	Tenants  *TenantDirectory
	Limits   Limits
	Required []string // profile fields that must be set
	// RevokePath is the revoke call's path on the token host, "" when none.
	RevokePath string
	// RejectHint tells the user what to do when the vendor refuses the
	// credentials; {profile} is replaced by the profile name.
	RejectHint string
}

// Region is one of a vendor's clouds.
type Region struct {
	TokenHost string
	APIHost   string
}

func sameHost(h string) Region { return Region{TokenHost: h, APIHost: h} }

const bearer = "Authorization: Bearer {token}"

// vendors is the catalogue. Sources: VENDORS.md and the seed documents.
var vendors = map[string]*Vendor{
	"aruba-central": {
		ID: "aruba-central", Display: "Aruba Central", RegionKey: "region",
		// Seed 004, table 4.
		Regions: map[string]Region{
			"us-1":        sameHost("app1-apigw.central.arubanetworks.com"),
			"us-2":        sameHost("apigw-prod2.central.arubanetworks.com"),
			"us-west-4":   sameHost("apigw-uswest4.central.arubanetworks.com"),
			"eu-1":        sameHost("eu-apigw.central.arubanetworks.com"),
			"eu-2":        sameHost("apigw-eucentral2.central.arubanetworks.com"),
			"eu-3":        sameHost("apigw-eucentral3.central.arubanetworks.com"),
			"ca-1":        sameHost("apigw-ca.central.arubanetworks.com"),
			"cn-1":        sameHost("apigw.central.arubanetworks.com.cn"),
			"apac-1":      sameHost("api-ap.central.arubanetworks.com"),
			"apac-east1":  sameHost("apigw-apaceast.central.arubanetworks.com"),
			"apac-south1": sameHost("apigw-apacsouth.central.arubanetworks.com"),
		},
		TokenPath:       "/oauth2/token",
		CredentialPaths: []string{"/oauth2", "/central/v1/webhooks/*/token"},
		ClientAuth:      oauth2.AuthStyleInParams,
		RefreshInQuery:  true,
		Refreshable:     true,
		RefreshFallback: true,
		RefreshIdle:     15 * 24 * time.Hour,
		Header:          bearer,
		TenantHeader:    "TenantID",
		Tenants:         arubaCustomers,
		Limits:          Limits{PerSecond: 7, PerDay: 5000},
		Required:        []string{"client_id", "client_secret"},
		RevokePath:      "/oauth2/api/tokens",
		RejectHint:      "run `tokenbroker login {profile}` or import a new token with `tokenbroker import {profile} FILE`",
	},
	"ruckus-one": {
		ID: "ruckus-one", Display: "RUCKUS One", RegionKey: "region", DefaultRegion: "us",
		// Seed 000 (token hosts) and VENDORS.md (API hosts).
		Regions: map[string]Region{
			"us":   {TokenHost: "ruckus.cloud", APIHost: "api.ruckus.cloud"},
			"eu":   {TokenHost: "eu.ruckus.cloud", APIHost: "api.eu.ruckus.cloud"},
			"asia": {TokenHost: "asia.ruckus.cloud", APIHost: "api.asia.ruckus.cloud"},
		},
		TokenPath:       "/oauth2/token/{tenant_id}",
		CredentialPaths: []string{"/oauth2"},
		ClientAuth:      oauth2.AuthStyleInParams,
		PrimaryGrant:    "client_credentials",
		Header:          bearer,
		TenantHeader:    "x-rks-tenantid",
		Required:        []string{"client_id", "client_secret", "tenant_id"},
		RejectHint:      "check client_id, client_secret and tenant_id of the Application Token in RUCKUS One",
	},
	"ringcentral": {
		ID: "ringcentral", Display: "RingCentral", RegionKey: "environment", DefaultRegion: "production",
		Regions: map[string]Region{
			"production": sameHost("platform.ringcentral.com"),
			"sandbox":    sameHost("platform.devtest.ringcentral.com"),
		},
		TokenPath:       "/restapi/oauth/token",
		CredentialPaths: []string{"/restapi/oauth"},
		ClientAuth:      oauth2.AuthStyleInHeader,
		PrimaryGrant:    "jwt_bearer",
		Refreshable:     true,
		Header:          bearer,
		Required:        []string{"client_id", "client_secret", "jwt"},
		RevokePath:      "/restapi/oauth/revoke",
		RejectHint:      "check the JWT credential and the app's client_id and client_secret in the RingCentral Developer Console",
	},
	"workspace-one": {
		ID: "workspace-one", Display: "Workspace ONE Access",
		TokenPath:       "/SAAS/auth/oauthtoken",
		CredentialPaths: []string{"/SAAS/auth", "/SAAS/API/1.0/oauth2"},
		ClientAuth:      oauth2.AuthStyleInHeader,
		PrimaryGrant:    "client_credentials",
		Refreshable:     true,
		Header:          bearer,
		Required:        []string{"client_id", "client_secret", "base_url"},
		RejectHint:      "check the service client's id and shared secret in Workspace ONE Access (Settings > OAuth 2.0 Management)",
	},
	"greenlake": {
		ID: "greenlake", Display: "HPE GreenLake", RegionKey: "region", DefaultRegion: "global",
		Regions: map[string]Region{
			"global": {TokenHost: "sso.common.cloud.hpe.com", APIHost: "global.api.greenlake.hpe.com"},
		},
		TokenPath:       "/as/token.oauth2",
		CredentialPaths: []string{"/as"},
		ClientAuth:      oauth2.AuthStyleInHeader,
		PrimaryGrant:    "client_credentials",
		Header:          bearer,
		Required:        []string{"client_id", "client_secret"},
		RejectHint:      "check the API client credentials in HPE GreenLake",
	},
}

func providerNames() string {
	names := []string{"oauth2", "static"}
	for id := range vendors {
		names = append(names, id)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func (v *Vendor) regionNames() string {
	var names []string
	for r := range v.Regions {
		names = append(names, r)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

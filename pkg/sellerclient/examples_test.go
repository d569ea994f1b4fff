package sellerclient

// Bodies copied from (or built exactly like) the examples in
// shared/spec/seller-protocol.md.

const agentCardBody = `{"name":"Ad Seller Agent","description":"IAB OpenDirect 2.1 compliant seller agent","url":"http://localhost:8000",
 "version":"2.4.2","provider":{"name":"Default Publisher","url":"http://localhost:8000","description":null},
 "capabilities":{"protocols":["opendirect21"],"streaming":false,"push_notifications":false},
 "skills":[{"id":"discovery","name":"Inventory discovery","description":"Browse products","tags":["catalog"]},
           {"id":"negotiation","name":"Negotiation","description":"Negotiate prices","tags":["pricing","negotiation"]}],
 "authentication":{"schemes":["api_key","bearer"],"credentials_url":null},
 "inventory_types":["ctv","display","dooh","linear_tv","mobile_app","native","video"],
 "supported_deal_types":["pg","pmp","preferred_deal","private_auction"],"contact":null,"tos_url":null,
 "audience_capabilities":{"schema_version":"1","standard_taxonomy_versions":["1.1"],"contextual_taxonomy_versions":["3.1"],
   "agentic":{"supported":false},"supports_constraints":true,"supports_extensions":false,"supports_exclusions":false,
   "max_refs_per_role":{"primary":1,"constraints":3,"extensions":0,"exclusions":0},
   "taxonomy_lock_hashes":{"audience":"sha256:aa","content":"sha256:bb"}}}`

const publicPackageBody = `{"package_id":"pkg-1a2b3c4d","name":"Sports Video Premium","description":"Premium sports video",
 "ad_formats":["video"],"device_types":[2,3],"cat":["IAB17"],"cattax":2,
 "audience_capabilities":{"standard_taxonomy_version":"1.1","contextual_taxonomy_version":"3.1","supports_standard":true,
   "supports_contextual":true,"supports_agentic":false,"agentic_spec_version":null},
 "geo_targets":["US"],"tags":["premium","sports"],"price_range":"$28-$42 CPM","rate_type":"cpm","is_featured":true}`

const seatPackageBody = `{"package_id":"pkg-1a2b3c4d","name":"Sports Video Premium","description":"Premium sports video",
 "ad_formats":["video"],"device_types":[2,3],"cat":["IAB17"],"cattax":2,
 "audience_capabilities":{"standard_segment_ids":["3","4"],"standard_taxonomy_version":"1.1","contextual_segment_ids":["IAB17-1"],
   "contextual_taxonomy_version":"3.1","agentic_capabilities":null},
 "geo_targets":["US"],"tags":["premium","sports"],"price_range":"$33 CPM","rate_type":"cpm","is_featured":true,
 "exact_price":33.25,"floor_price":28.0,"currency":"USD",
 "placements":[{"product_id":"prod-15ba2543","product_name":"Pre-Roll Video","ad_formats":["video"],"device_types":[2,3],"weight":1.0},
               {"product_id":"prod-53e78a97","product_name":"CTV Premium Streaming","ad_formats":["ctv"],"device_types":[3]}],
 "negotiation_enabled":false,"volume_discounts_available":false}`

const agencyPackageBody = `{"package_id":"pkg-1a2b3c4d","name":"Sports Video Premium","description":null,"ad_formats":["video"],
 "device_types":[2,3],"cat":["IAB17"],"cattax":2,"geo_targets":[],"tags":["premium","sports"],"price_range":"$32 CPM",
 "rate_type":"cpm","is_featured":true,"exact_price":31.5,"floor_price":28.0,"currency":"USD","placements":[],
 "negotiation_enabled":true,"volume_discounts_available":true}`

const mediaKitBody = `{"total_packages":2,"featured_count":1,"featured":[` + publicPackageBody + `],"all_packages":[` + publicPackageBody + `,
 {"package_id":"pkg-5e6f7a8b","name":"Run of Site Display","description":null,"ad_formats":["display"],"device_types":[1,2],"cat":[],
  "cattax":2,"audience_capabilities":null,"geo_targets":[],"tags":[],"price_range":"$6-$10 CPM","rate_type":"cpm","is_featured":false}]}`

const quoteBody = `{"quote":{"quote_id":"qt-0123456789ab","status":"available","deal_type":"PG",
 "product":{"product_id":"prod-15ba2543","name":"Pre-Roll Video","inventory_type":"video"},
 "pricing":{"pricing_type":"fixed","base_cpm":{"amount_micros":25000000,"currency":"USD"},"tier_discount_pct":10.0,
   "volume_discount_pct":5.0,"final_cpm":{"amount_micros":21380000,"currency":"USD"},"pricing_model":"cpm",
   "rationale":"Base price: $25.00 CPM | Agency tier: -10% | Volume discount: -5.0% | Final price: $21.38 CPM | (Total savings: 14.5%)",
   "base_cpp":null,"final_cpp":null},
 "terms":{"impressions":6000000,"flight_start":"2026-11-25","flight_end":"2026-12-25","guaranteed":true,"grps":null,
   "guaranteed_grps":null,"target_demo":null},
 "availability":{"inventory_available":true,"estimated_fill_rate":null,"competing_demand":null},
 "buyer_tier":"agency","rate_card_id":null,"expires_at":"2026-11-26T18:55:22.955953Z","seller_id":"seller-premium-pub-001",
 "created_at":"2026-11-25T18:55:22.955953Z","deal_id":null,"media_type":"digital","linear_tv":null,"consent_context":null}}`

const dealBody = `{"deal":{"deal_id":"DEMO-7CE8BB4B565B","deal_type":"PG","status":"proposed","quote_id":"qt-0123456789ab",
 "rate_card_id":null,"product":{"product_id":"prod-15ba2543","name":"Pre-Roll Video","inventory_type":"video"},
 "pricing":{"pricing_type":"fixed","base_cpm":{"amount_micros":25000000,"currency":"USD"},"tier_discount_pct":10.0,
   "volume_discount_pct":5.0,"final_cpm":{"amount_micros":21380000,"currency":"USD"},"pricing_model":"cpm",
   "rationale":"Base price: $25.00 CPM | Agency tier: -10% | Volume discount: -5.0% | Final price: $21.38 CPM | (Total savings: 14.5%)",
   "base_cpp":null,"final_cpp":null},
 "terms":{"impressions":6000000,"flight_start":"2026-11-25","flight_end":"2026-12-25","guaranteed":true,"grps":null,
   "guaranteed_grps":null,"target_demo":null},
 "buyer_tier":"agency","seller_id":null,"expires_at":"2026-12-25T19:01:02.123456Z",
 "activation_instructions":{"ttd":"In The Trade Desk, create a new PMP deal with Deal ID: DEMO-7CE8BB4B565B",
   "dv360":"In DV360, add deal DEMO-7CE8BB4B565B under Inventory > My Inventory > Deals",
   "xandr":"In Xandr, navigate to Deals and enter Deal ID: DEMO-7CE8BB4B565B"},
 "openrtb_params":{"id":"DEMO-7CE8BB4B565B","bidfloor":{"amount_micros":21380000,"currency":"USD"},"at":1,"wseat":[],"wadomain":[]},
 "media_type":"digital","linear_tv":null,"created_at":"2026-11-25T19:01:02.123456Z","consent_context":null,"supply_chain":null},
 "audience_plan_snapshot":null,"audience_match_summary":null}`

const negotiationBody = `{"negotiation_id":"neg-1a2b3c4d","status":"active","round":{"round_number":1,
 "buyer_price":{"amount_micros":20000000,"currency":"USD"},"seller_price":{"amount_micros":24250000,"currency":"USD"},
 "action":"counter","concession_pct":0.030000000000000027,"cumulative_concession_pct":0.030000000000000027,
 "rationale":"Counter at $24.25 CPM (aggressive strategy, round 1/3).","timestamp":"2026-11-25T18:55:22.955953Z"},
 "rounds_remaining":2}`

// The four error shapes of §1.5 plus the plain-text 500.
const (
	err422Body      = `{"detail":[{"type":"missing","loc":["body","idempotency_key"],"msg":"Field required","input":{"product_id":"prod-15ba2543","deal_type":"PD"}}]}`
	errStringBody   = `{"detail":"Product not found"}`
	errObjectBody   = `{"detail":{"error":"quote_expired","message":"Quote has expired. Request a new quote."}}`
	errEnvelopeBody = `{"detail":{"error":"idempotency_conflict","message":"idempotency_key was already used with a different request body","unsupported":[]}}`
	errPlain500     = `Internal Server Error`
)

// Package conformance is the seller-agent conformance suite: the contract
// cases of shared/spec/seller-protocol.md §8 that a buyer exercises, written
// once as Go tests through pkg/sellerclient and run against either target:
//
//   - by default, a sandbox seller (internal/sandbox) started in TestMain with
//     the §8 fixture, plus two helper sandbox sellers (one with an empty media
//     kit, one whose advertiser key carries advertiser_id only) and, for the
//     expiry case, a sandbox seller on an adjustable clock;
//   - when SELLER_URL is set, that real IAB seller-agent (v2.4.2).
//
// Run:
//
//	go test -race ./test/conformance/
//	SELLER_URL=http://localhost:8000 \
//	  SELLER_SEAT_KEY=ask_live_... SELLER_AGENCY_KEY=ask_live_... SELLER_ADVERTISER_KEY=ask_live_... \
//	  SELLER_P1_PACKAGE_ID=pkg-... go test -count=1 ./test/conformance/
//
// # Preparing a real seller (the §8 fixture)
//
// The real seller must be prepared exactly like the sandbox fixture, because
// the cases assert values (prices, package counts, search order):
//
//  1. Fresh database (no packages, no quotes). The suite uses a random
//     idempotency-key prefix per run, so re-running against the same database
//     works, but the media kit must still hold P1 only.
//  2. With an operator key (ad-seller create-operator-key), mint three buyer
//     keys with POST /auth/api-keys and export them:
//     SELLER_SEAT_KEY       {"seat_id":"seat-1"}
//     SELLER_AGENCY_KEY     {"seat_id":"seat-1","agency_id":"agency-1"}
//     SELLER_ADVERTISER_KEY {"seat_id":"seat-1","agency_id":"agency-1","advertiser_id":"adv-1"}
//  3. Create package P1 with POST /packages and export its package_id as
//     SELLER_P1_PACKAGE_ID:
//     {"name":"Premium Sports Video","description":"Live sports highlights",
//     "product_ids":["prod-53e78a97"],"ad_formats":["video"],"base_price":35,
//     "floor_price":28,"is_featured":true,"tags":["premium","sports"],
//     "audience_capabilities":{"standard_segment_ids":["3","4"],"contextual_segment_ids":["IAB17-1"]}}
//
// Optional, to run two cases that otherwise only the sandbox can set up:
//
//   - SELLER_REVOKED_KEY: a buyer key revoked with DELETE /auth/api-keys/{key_id}
//     (case 13, revoked key → 401 "API key key-… has been revoked");
//   - SELLER_ADVERTISER_ONLY_KEY: a buyer key minted with
//     {"advertiser_id":"adv-1"} and no agency_id (case 22, priced as public).
//
// Case 45 (the IAB Deals API buyer side) starts dealflow's bookings API and
// activator in the test and has the seller push deals to it
// (POST /api/v1/deals/push) and ask their status
// (GET /api/v1/deals/{id}/buyer-status): the seller must reach it. It
// listens on 127.0.0.1, which a seller on the same host reaches; otherwise
// set BUYER_LISTEN (e.g. 0.0.0.0:8090) and BUYER_URL (the deal endpoint as
// the seller reaches it, e.g. http://host.docker.internal:8090/deals).
//
// Cases that need what only the sandbox offers (an empty seller, a clock to
// expire a quote, the optional keys above when unset) are reported as not
// applicable with t.Log against a real seller; in sandbox mode they always run
// and assert. Nothing is skipped with t.Skip.
//
// Every request body the client sends (POST /api/v1/quotes, /api/v1/deals,
// /api/v1/negotiations/messages, /media-kit/search, /api/v1/deals/push) is validated after the
// cases against the request schemas of the repository's
// contracts/seller-agent/openapi.json (internal/contracts finds it from the
// module root): in sandbox mode the bodies come from the sellers' request
// logs, against a real seller from a recording transport on the client.
package conformance

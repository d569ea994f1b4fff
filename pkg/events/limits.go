package events

import "time"

// The limits of a campaign request. They are defined once, here: the
// bookings API, the discoverer (CampaignRequested.Validate) and the
// optimiser (internal/portfolio asserts it can handle them exactly) agree on
// them, so a request either fails at the edge with the field named or can be
// carried through to the end.
const (
	// MaxBudgetMicros is the largest budget a brief may ask for:
	// 1,000,000,000 USD. Every budget up to it survives the optimiser's
	// conversion to dollars and back to the micro exactly (at most 15
	// significant digits), and it is far below the optimiser's own limit.
	MaxBudgetMicros Micros = 1_000_000_000 * 1_000_000

	// MaxCPMMicros is the largest CPM a brief may name (kpis.target_cpm,
	// kpis.max_cpm, weights.price_ceiling, negotiation.step): 10,000 USD
	// per thousand impressions.
	MaxCPMMicros Micros = 10_000 * 1_000_000

	// MaxImpressions is the largest brief.impressions (10^15, the
	// optimiser's limit on a quote's impressions).
	MaxImpressions int64 = 1_000_000_000_000_000

	// MaxShoppingWindow is the longest shopping_window_seconds: 24 hours.
	MaxShoppingWindow = 24 * time.Hour

	// MaxStartInPast is how far before the current day (UTC) a flight may
	// start: a start_date of yesterday is accepted, the day before is not.
	MaxStartInPast = 24 * time.Hour

	// MaxFlightAhead is how far after the current day (UTC) a flight may
	// end: two years (730 days).
	MaxFlightAhead = 730 * 24 * time.Hour

	// MaxMinSellers is the largest brief.min_sellers.
	MaxMinSellers = 1000

	// MaxNegotiationRounds is the largest negotiation.max_rounds.
	MaxNegotiationRounds = 100

	// MaxWeight is the largest brief.weights.price, video, display,
	// negotiable and volume. Weights are relative (the defaults are 1 to
	// 10); the bound keeps every score finite (a price weight of 1e308 made
	// the optimiser's scores infinite and its search endless).
	MaxWeight = 1000.0

	// MaxNameLen is the longest brief.name and buyer name field
	// (seat_name, agency_name, ...), in characters.
	MaxNameLen = 100
	// MaxIDLen is the longest buyer id (seat_id, agency_id,
	// advertiser_id), in characters.
	MaxIDLen = 128
	// MaxTokenLen is the longest channel, ad format, objective, geo
	// target, tag, format_mix key and deal type, in characters.
	MaxTokenLen = 64
	// MaxKeywordLen is the longest keyword, in characters.
	MaxKeywordLen = 100
	// MaxURLLen is the longest seller URL a campaign may name, in bytes.
	MaxURLLen = 2048

	// MaxChannels caps brief.channels.
	MaxChannels = 32
	// MaxAdFormats caps brief.ad_formats.
	MaxAdFormats = 32
	// MaxObjectives caps brief.objectives.
	MaxObjectives = 32
	// MaxDeviceTypes caps brief.device_types; each is an OpenRTB (AdCOM)
	// device type, 1..MaxDeviceType.
	MaxDeviceTypes = 8
	// MaxDeviceType is the largest OpenRTB device type (8, set-top box).
	MaxDeviceType = 8
	// MaxGeo caps brief.geo.
	MaxGeo = 500
	// MaxKeywords caps brief.keywords.
	MaxKeywords = 100
	// MaxTags caps brief.tags.
	MaxTags = 100
	// MaxFormatMix caps the entries of brief.format_mix.
	MaxFormatMix = 32
	// MaxCampaignSellers caps the seller URLs a campaign names (sellers).
	MaxCampaignSellers = 1000

	// MaxEventBytes is the largest event the bus publishes or accepts: its
	// JSON data plus its CloudEvents headers, 256 KiB. Larger events are
	// refused at publish and dead-lettered at consume.
	MaxEventBytes = 256 << 10

	// MaxRequestBytes is the largest CampaignRequested payload, encoded as
	// JSON: 96 KiB. Every field's own limit above allows more in total
	// (500 geo targets of 64 escaped characters alone take 190 KB), so this
	// one decides what travels: a request within it fits its own event, the
	// brief fits every SellerFound and PackageFound (which carry its
	// shopping part, besides a seller and a buyer of a few KB) with room to
	// spare, and the campaign record keeps most of its 1 MiB for what the
	// campaign does. A larger request is refused, naming its largest field.
	MaxRequestBytes = 96 << 10

	// MaxReasonLen is the longest reason a SellerSkipped, a QuoteReady or a
	// campaign's summary carries, in bytes: a reason says why, it never
	// copies the brief or a seller's answer (ShortReason cuts it).
	MaxReasonLen = 600
)

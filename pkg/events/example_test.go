package events_test

import (
	"fmt"
	"log"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/dealflow/dealflow/pkg/events"
)

// connect starts a NATS server inside the process and connects to it: a
// dealflow deployment's server in a real program (nats.Connect with its
// URL).
func connect() (*nats.Conn, func()) {
	s, err := server.NewServer(&server.Options{DontListen: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		log.Fatal("nats server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(s))
	if err != nil {
		log.Fatal(err)
	}
	return nc, func() { nc.Close(); s.Shutdown() }
}

// toMsg is an encoded event as a NATS message (events.Header is nats.Header's
// underlying type).
func toMsg(m *events.Message) *nats.Msg {
	return &nats.Msg{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data}
}

// Ask the pipeline to shop and book a campaign: make the CampaignRequested
// event (New refuses a payload that breaks the contract), encode it as a
// CloudEvent in binary mode and publish it on its kind's subject for the
// campaign. Against a running dealflow, publish it through JetStream
// (jetstream.JetStream.PublishMsg) to wait for the stream's acknowledgement.
func Example_publishCampaignRequested() {
	nc, stop := connect()
	defer stop()
	seen, err := nc.SubscribeSync(events.KindCampaignRequested.Filter()) // to show what was published
	if err != nil {
		log.Fatal(err)
	}

	req := events.CampaignRequested{
		CampaignID: "cmp-example",
		Brief: events.Brief{Name: "Spring CTV", BudgetMicros: events.MustMicros(50_000), StartDate: "2030-03-01", EndDate: "2030-03-31",
			Channels: []string{"ctv"}},
		Buyer:       events.BuyerIdentity{SeatID: "seat-1", AgencyID: "agency-1"},
		AutoApprove: true,
		RequestedAt: time.Now().UTC(),
	}
	e, err := events.New(events.KindCampaignRequested, events.NewID(), "example", req.CampaignID, req)
	if err != nil {
		log.Fatal(err)
	}
	m, err := events.Encode(e, events.KindCampaignRequested.SubjectFor(req.CampaignID))
	if err != nil {
		log.Fatal(err)
	}
	if err := nc.PublishMsg(toMsg(m)); err != nil {
		log.Fatal(err)
	}

	got, err := seen.NextMsg(5 * time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Subject)
	fmt.Println(got.Header.Get("ce-type"), got.Header.Get("ce-subject"), got.Header.Get("ce-source"))
	// Output:
	// dealflow.campaign.requested.cmp-example
	// com.dealflow.campaign.requested.v1 cmp-example /dealflow/example
}

// Follow the deals the pipeline books: subscribe to DealBooked for every
// campaign, decode each message as a CloudEvent and its payload into a
// DealBooked (PayloadOf checks it against the contract). Here the example
// publishes the deal itself, as the booker does.
func Example_subscribeDealBooked() {
	nc, stop := connect()
	defer stop()
	booked, err := nc.SubscribeSync(events.KindDealBooked.Filter()) // dealflow.deal.booked.*
	if err != nil {
		log.Fatal(err)
	}

	deal := events.DealBooked{CampaignID: "cmp-example", SellerURL: "https://seller.example", PackageID: "pkg-7", QuoteID: "q-1",
		DealID: "DEAL-42", DealType: "PD", CPMMicros: events.MustMicros(12.5), AgreedCPMMicros: events.MustMicros(12.5), Impressions: 100_000,
		SpendMicros: events.CostMicros(100_000, events.MustMicros(12.5)), Currency: "USD", Tier: events.TierAgency, BookedAt: time.Now().UTC()}
	e, err := events.New(events.KindDealBooked, events.NewID(), events.StageBooker, deal.CampaignID, deal)
	if err != nil {
		log.Fatal(err)
	}
	m, err := events.Encode(e, events.KindDealBooked.SubjectFor(deal.CampaignID))
	if err != nil {
		log.Fatal(err)
	}
	if err := nc.PublishMsg(toMsg(m)); err != nil {
		log.Fatal(err)
	}

	msg, err := booked.NextMsg(5 * time.Second)
	if err != nil {
		log.Fatal(err)
	}
	in, err := events.Decode(events.Header(msg.Header), msg.Data)
	if err != nil {
		log.Fatal(err)
	}
	d, err := events.PayloadOf[events.DealBooked](in, events.KindDealBooked)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: deal %s with %s, %d impressions at %s CPM, %s\n", in.Subject(), d.DealID, d.SellerURL, d.Impressions, d.CPMMicros, d.SpendMicros)
	// Output:
	// cmp-example: deal DEAL-42 with https://seller.example, 100000 impressions at $12.50 CPM, $1,250.00
}

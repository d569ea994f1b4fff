// Package events is the public contract of the dealflow pipeline: every event
// type with its CloudEvents type, its NATS subject and its JSON Schema, the
// payload structs, and the CloudEvents codec used over NATS.
//
// Every event is a CloudEvent 1.0. Its subject attribute is the campaign id and
// its NATS subject is "<kind subject>.<campaign id>", so a consumer can follow
// one campaign ("dealflow.*.*.<id>") or one kind of fact ("dealflow.deal.booked.*").
//
// On the wire the codec uses the binary mode of the CloudEvents NATS binding
// (attributes in percent-encoded "ce-" headers, the JSON payload as the body,
// Nats-Msg-Id = the event id so JetStream drops duplicates) and accepts the
// structured mode (Content-Type application/cloudevents+json) on input, so a
// user can publish with the stock nats CLI.
//
// Every payload type has a Validate method: its schema's rules, checked on
// the value. New and Derive check the payload of the event they make;
// Payload and PayloadOf decode one strictly (exact member names, none twice)
// and check it. ValidateData holds JSON from elsewhere (a file, a request
// body, another system's event) to the JSON Schema itself.
package events

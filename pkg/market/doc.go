// Package market is the vocabulary the buyer and its sellers trade in: exact
// amounts of money (Micros), the buyer's access tiers and identity (Tier,
// BuyerIdentity), a seller's trust level (Trust) and the API family it speaks
// (Protocol).
//
// It imports only the standard library. The event contract (pkg/events)
// re-exports these types with aliases and the seller client
// (pkg/sellerclient) uses them directly, so a program that only calls
// sellers does not pull in the contract's CloudEvents and JSON Schema
// dependencies.
package market

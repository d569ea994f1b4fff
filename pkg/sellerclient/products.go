package sellerclient

import (
	"context"
	"fmt"
	"io"
	"strconv"
)

// Product is one catalog product (GET /products). The floor and minimum
// order live in ext, in float dollars.
type Product struct {
	ProductID            string     `json:"product_id"`
	Name                 string     `json:"name"`
	Description          string     `json:"description,omitempty"`
	BasePrice            *Money     `json:"base_price"`
	PricingModel         string     `json:"pricing_model,omitempty"`
	DeliveryType         string     `json:"delivery_type,omitempty"`
	AdFormats            []string   `json:"ad_formats"`
	AvailableImpressions *int64     `json:"available_impressions"`
	Ext                  ProductExt `json:"ext"`
}

// ProductExt is the seller's product extension.
type ProductExt struct {
	InventoryType      string   `json:"inventory_type,omitempty"`
	FloorCPM           *float64 `json:"floor_cpm"`
	MinimumImpressions int64    `json:"minimum_impressions,omitempty"`
	DealTypes          []string `json:"deal_types,omitempty"`
}

// InventoryType is the product's inventory type (ext.inventory_type, else
// its first ad format).
func (p Product) InventoryType() string {
	if p.Ext.InventoryType != "" {
		return p.Ext.InventoryType
	}
	if len(p.AdFormats) > 0 {
		return p.AdFormats[0]
	}
	return ""
}

type productPage struct {
	Products   []Product `json:"products"`
	TotalCount int       `json:"total_count"`
	Limit      int       `json:"limit"`
	Offset     int       `json:"offset"`
}

// maxProductPages bounds catalog paging against a seller that never ends.
const maxProductPages = 20

// ListProducts fetches the seller's whole catalog, 500 products a page.
func (c *Client) ListProducts(ctx context.Context, sellerURL string) ([]Product, error) {
	const op = "ListProducts"
	base, err := c.sellerURL(op, sellerURL)
	if err != nil {
		return nil, err
	}
	var all []Product
	for page, offset := 0, 0; page < maxProductPages; page++ {
		q := queryOf("limit", "500", "offset", strconv.Itoa(offset))
		var pg productPage
		if err := c.getStream(ctx, op, joinURL(base, "/products", q), Auth{}, func(r io.Reader) error {
			if err := readObject(r, &pg); err != nil {
				return fmt.Errorf("products: %w", err)
			}
			return nil
		}); err != nil {
			return nil, err
		}
		all = append(all, pg.Products...)
		offset += len(pg.Products)
		if len(pg.Products) == 0 || offset >= pg.TotalCount {
			break
		}
	}
	return all, nil
}

// Three AdCP sales agents built on the AdCP TypeScript SDK (@adcp/sdk), each
// in front of one of the SDK's own mock ad servers, for dealflow's SDK tests
// (Go tests named *SDK*; see sdkseller.go beside this file):
//
//   - guaranteed: sales-guaranteed upstream; fixed CPM options; every
//     create_media_buy goes to IO review (answers `submitted`, the buy is
//     read with the task tool or pushed to the buyer's webhook);
//   - auction:    sales-non-guaranteed upstream; a fixed option unless the
//     buyer asks for auction pricing (filters.is_fixed_price: false), which
//     returns floor + price guidance options instead; buys confirm at once;
//     update_media_buy changes package budgets and cancels (PATCH on the
//     mock's order; the mock has no pause: refused UNSUPPORTED_FEATURE);
//   - proposal:   sales-guaranteed upstream; sells only through proposals
//     (brief -> draft proposals -> refine finalize -> create_media_buy with
//     proposal_id + total_budget); package buys and product refines are
//     refused.
//
// All three require the Bearer token on the whole MCP endpoint (initialize
// included: the SDK's serve() authenticates before MCP), and resolve
// accounts by brand + operator only (the natural key of AccountReference),
// from the accounts configured here or registered with sync_accounts.
//
// Configuration is one JSON document in ADCP_SDK_SELLER_CONFIG:
//   {"token":"...", "accounts":[{"brand":"acme.example","operator":"dealflow.example"}],
//    "operators":["dealflow.example"], "proposal_hold_ms":600000}
// accounts exist from the start; sync_accounts provisions other brands for
// the listed operators (default: the accounts' operators) and refuses the
// rest with ACCOUNT_NOT_FOUND.
// Once every agent listens, one JSON line goes to stdout:
//   {"guaranteed":"http://127.0.0.1:P/mcp","auction":"...","proposal":"...","sdk":"6.11.0","adcp":"3.0.6"}
// Every request an agent receives is logged to stderr as one JSON line
// ({"seller","tool","status"}), for the tests' failure output.

import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import {
  AdcpError,
  createAdcpServerFromPlatform,
  createIdempotencyStore,
  createInMemoryTaskRegistry,
  createUpstreamHttpClient,
  InMemoryStateStore,
  memoryBackend,
  serve,
  verifyApiKey,
} from '@adcp/sdk/server';
import { bootMockServer } from '@adcp/sdk/mock-server';

const require = createRequire(import.meta.url);
const SDK_VERSION = require('@adcp/sdk/package.json').version;

const cfg = JSON.parse(process.env.ADCP_SDK_SELLER_CONFIG ?? '{}');
if (!cfg.token || cfg.token.length < 16) {
  console.error('ADCP_SDK_SELLER_CONFIG.token (16+ characters) is required');
  process.exit(2);
}
const HOST = '127.0.0.1';
const PROPOSAL_HOLD_MS = Number(cfg.proposal_hold_ms ?? 10 * 60 * 1000);
const APPROVAL_POLLS = 3;

function log(obj) {
  process.stderr.write(JSON.stringify(obj) + '\n');
}

// ---------------------------------------------------------------------------
// Accounts: brand + operator, shared by the three agents (one seller house).
// ---------------------------------------------------------------------------

const accounts = new Map(); // "brand|operator" -> Account
function accountKey(brand, operator) {
  return `${brand}|${operator}`;
}
function addAccount(brand, operator) {
  const key = accountKey(brand, operator);
  let a = accounts.get(key);
  if (!a) {
    a = {
      id: `acct_${accounts.size + 1}_${brand.replace(/[^a-z0-9]/g, '_')}`,
      name: `${brand} via ${operator}`,
      status: 'active',
      brand: { domain: brand },
      operator,
      billing: { invoicedTo: 'operator' },
      ctx_metadata: { brand, operator },
    };
    accounts.set(key, a);
  }
  return a;
}
for (const a of cfg.accounts ?? []) addAccount(a.brand, a.operator);
// Operators the house has agreements with: sync_accounts provisions a brand
// for them, and refuses any other operator.
const operators = new Set(cfg.operators ?? (cfg.accounts ?? []).map(a => a.operator));

function accountStore() {
  return {
    resolution: 'explicit',
    resolve: async ref => {
      if (!ref) return null; // every tool that needs an account must name one
      if ('account_id' in ref && ref.account_id) {
        throw new AdcpError('ACCOUNT_NOT_FOUND', {
          message: 'this seller resolves accounts by brand + operator only, not account_id',
          field: 'account.account_id',
          recovery: 'correctable',
        });
      }
      const brand = ref.brand?.domain;
      const a = brand && ref.operator ? accounts.get(accountKey(brand, ref.operator)) : undefined;
      return a ?? null;
    },
    upsert: async refs =>
      refs.map(ref => {
        if ('account_id' in ref && ref.account_id) {
          return {
            brand: { domain: 'unknown.example' },
            operator: 'unknown.example',
            action: 'failed',
            status: 'rejected',
            errors: [{ code: 'INVALID_REQUEST', message: 'sync_accounts needs brand + operator' }],
          };
        }
        if (!operators.has(ref.operator)) {
          return {
            brand: ref.brand,
            operator: ref.operator,
            action: 'failed',
            status: 'rejected',
            errors: [{ code: 'ACCOUNT_NOT_FOUND', message: `no agreement with operator ${ref.operator}` }],
          };
        }
        const existed = accounts.has(accountKey(ref.brand.domain, ref.operator));
        const a = addAccount(ref.brand.domain, ref.operator);
        return {
          account_id: a.id,
          name: a.name,
          brand: a.brand,
          operator: a.operator,
          action: existed ? 'unchanged' : 'created',
          status: 'active',
          billing: 'operator',
        };
      }),
    list: async filter => {
      const items = [...accounts.values()].filter(
        a =>
          (!filter?.brand_domain || a.brand.domain === filter.brand_domain) &&
          (!filter?.operator || a.operator === filter.operator)
      );
      return { items, has_more: false };
    },
  };
}

// ---------------------------------------------------------------------------
// Upstream helpers (the SDK's mock ad servers).
// ---------------------------------------------------------------------------

async function upstream(specialism, networkDomain) {
  const mock = await bootMockServer({ specialism, port: 0 });
  const http = createUpstreamHttpClient({ baseUrl: mock.url, auth: { kind: 'static_bearer', token: mock.auth.apiKey } });
  const { body: net } = await http.get('/_lookup/network', { adcp_publisher: networkDomain });
  if (!net) throw new Error(`${specialism}: no upstream network for ${networkDomain}`);
  const h = { 'X-Network-Code': net.network_code };
  return {
    mock,
    network: net,
    async products(q = {}) {
      const params = {};
      for (const [k, v] of Object.entries(q)) if (v !== undefined) params[k] = String(v);
      const { body } = await http.get('/v1/products', params, h);
      return body?.products ?? [];
    },
    async createOrder(body) {
      const r = await http.post('/v1/orders', body, h);
      if (!r.body) throw new AdcpError('SERVICE_UNAVAILABLE', { message: 'upstream refused the order', recovery: 'transient' });
      return r.body;
    },
    async getOrder(id) {
      const { body } = await http.get(`/v1/orders/${encodeURIComponent(id)}`, undefined, h);
      return body;
    },
    async listOrders() {
      const { body } = await http.get('/v1/orders', undefined, h);
      return body?.orders ?? [];
    },
    async lineItems(id) {
      const { body } = await http.get(`/v1/orders/${encodeURIComponent(id)}/lineitems`, undefined, h);
      return body?.line_items ?? [];
    },
    async createLineItem(orderId, body) {
      const r = await http.post(`/v1/orders/${encodeURIComponent(orderId)}/lineitems`, body, h);
      if (!r.body) {
        throw new AdcpError('BUDGET_TOO_LOW', {
          message: `upstream refused the line item for ${body.product_id} (budget ${body.budget})`,
          field: 'packages.budget',
          recovery: 'correctable',
        });
      }
      return r.body;
    },
    async task(id) {
      const { body } = await http.get(`/v1/tasks/${encodeURIComponent(id)}`, undefined, h);
      return body;
    },
    async delivery(id) {
      const { body } = await http.get(`/v1/orders/${encodeURIComponent(id)}/delivery`, undefined, h);
      return body;
    },
    // updateOrder is PATCH /v1/orders/{id} (budget, status), which only the
    // non-guaranteed mock serves; the upstream client has no PATCH.
    async updateOrder(id, body) {
      const r = await fetch(`${mock.url}/v1/orders/${encodeURIComponent(id)}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${mock.auth.apiKey}`, ...h },
        body: JSON.stringify(body),
      });
      if (!r.ok) {
        throw new AdcpError('SERVICE_UNAVAILABLE', { message: `upstream refused the order update: ${r.status} ${await r.text()}`, recovery: 'transient' });
      }
      return r.json();
    },
  };
}

// updateBuy applies update_media_buy to a buy of the book on the
// non-guaranteed mock ad server, whose orders take a new budget and a
// status (PATCH /v1/orders/{id}) but have no pause: package budgets (the
// order's budget becomes their sum), package or buy cancellation (the
// order is canceled once no package is left). A pause is refused with
// UNSUPPORTED_FEATURE. The SDK replays a repeated idempotency_key itself.
async function updateBuy(up, book, buyId, patch, ctx) {
  const b = book.get(buyId);
  if (!b || b.account_id !== ctx.account.id) {
    throw new AdcpError('MEDIA_BUY_NOT_FOUND', { message: `no media buy ${buyId}`, field: 'media_buy_id', recovery: 'correctable' });
  }
  if (patch.revision !== undefined && patch.revision !== b.revision) {
    throw new AdcpError('CONFLICT', { message: `the buy is at revision ${b.revision}, not ${patch.revision}`, field: 'revision', recovery: 'correctable' });
  }
  if (b.canceled) {
    throw new AdcpError('INVALID_STATE', { message: `media buy ${buyId} is canceled`, field: 'media_buy_id', recovery: 'correctable' });
  }
  if (patch.paused !== undefined || (patch.packages ?? []).some(p => p.paused !== undefined)) {
    throw new AdcpError('UNSUPPORTED_FEATURE', { message: "the seller's ad server cannot pause an order", field: 'paused', recovery: 'terminal' });
  }
  const catalog = await up.products();
  const changes = (patch.packages ?? []).map((pu, i) => {
    const p = b.packages.find(x => x.package_id === pu.package_id);
    if (!p) {
      throw new AdcpError('PACKAGE_NOT_FOUND', { message: `no package ${pu.package_id}`, field: `packages[${i}].package_id`, recovery: 'correctable' });
    }
    if (p.canceled) {
      throw new AdcpError('INVALID_STATE', { message: `package ${pu.package_id} is canceled`, field: `packages[${i}].package_id`, recovery: 'correctable' });
    }
    if (pu.budget !== undefined) {
      centsExact(pu.budget, `packages[${i}].budget`);
      const min = catalog.find(c => c.product_id === p.product_id)?.pricing.min_spend;
      if (min !== undefined && pu.budget < min) {
        throw new AdcpError('BUDGET_TOO_LOW', {
          message: `packages[${i}].budget ${pu.budget} is below min_spend_per_package ${min}`,
          field: `packages[${i}].budget`,
          recovery: 'correctable',
        });
      }
    }
    return { p, pu };
  });
  for (const { p, pu } of changes) {
    if (pu.budget !== undefined) p.budget = pu.budget;
    if (pu.canceled) p.canceled = true;
  }
  if (patch.canceled) for (const p of b.packages) p.canceled = true;
  const canceled = b.packages.every(p => p.canceled);
  b.total_budget = round2(b.packages.reduce((s, p) => s + p.budget, 0));
  const order = await up.updateOrder(buyId, { budget: b.total_budget, ...(canceled && { status: 'canceled' }) });
  b.canceled = canceled;
  b.revision += 1;
  const lis = await up.lineItems(buyId);
  const affected = patch.canceled ? b.packages : changes.map(c => c.p);
  return {
    media_buy_id: buyId,
    media_buy_status: statusOf(order, lis),
    revision: b.revision,
    currency: b.currency,
    total_budget: b.total_budget,
    implementation_date: new Date().toISOString(),
    affected_packages: affected.map(p => packageOut(p)),
  };
}

function packageOut(p) {
  return {
    package_id: p.package_id,
    product_id: p.product_id,
    pricing_option_id: p.pricing_option_id,
    budget: p.budget,
    ...(p.bid_price !== undefined && { bid_price: p.bid_price }),
    ...(p.canceled && { canceled: true }),
  };
}


const channelOf = c => (c === 'video' ? 'olv' : c === 'audio' ? 'streaming_audio' : c);

function reporting() {
  return {
    available_reporting_frequencies: ['daily'],
    expected_delay_minutes: 240,
    timezone: 'UTC',
    supports_webhooks: false,
    available_metrics: ['impressions', 'spend'],
    date_range_support: 'date_range',
  };
}

function baseProduct(p, publisherDomain, agentURL) {
  return {
    product_id: p.product_id,
    name: p.name,
    description: `${p.name} (${p.delivery_type} ${p.channel})`,
    publisher_properties: [{ publisher_domain: publisherDomain, selection_type: 'all' }],
    channels: [channelOf(p.channel)],
    format_ids: p.format_ids.map(id => ({ agent_url: agentURL, id })),
    delivery_type: p.delivery_type,
    reporting_capabilities: reporting(),
  };
}

// upstreamQuery maps get_products filters onto the mock's forecast query.
function upstreamQuery(req) {
  const f = req.filters ?? {};
  return { flight_start: f.start_date, flight_end: f.end_date, budget: f.budget_range?.max };
}

function round2(n) {
  return Math.round(n * 100) / 100;
}

function centsExact(n, field) {
  if (Math.abs(n * 100 - Math.round(n * 100)) > 1e-6) {
    throw new AdcpError('INVALID_REQUEST', {
      message: `${field} ${n} has more decimals than the currency's minor unit (USD: cents)`,
      field,
      recovery: 'correctable',
    });
  }
}

function statusOf(order, lineItems) {
  switch (order.status) {
    case 'delivering':
      return 'active';
    case 'approved':
    case 'confirmed':
      return lineItems.length > 0 && lineItems.every(li => li.creative_ids?.length) ? 'pending_start' : 'pending_creatives';
    case 'completed':
      return 'completed';
    case 'canceled':
      return 'canceled';
    case 'rejected':
      return 'rejected';
    default:
      return 'pending_creatives';
  }
}

// readDelivery answers get_media_buy_delivery from the mock ad server's
// order delivery report (GET /v1/orders/{id}/delivery): per buy, its totals,
// and per package the line item's share of them at the product's fixed CPM.
async function readDelivery(up, book, req, ctx) {
  const mine = book.forAccount(ctx.account.id);
  const want = req.media_buy_ids?.length ? mine.filter(b => req.media_buy_ids.includes(b.media_buy_id)) : mine;
  const catalog = await up.products({ delivery_type: 'guaranteed' });
  const rows = [];
  let start = null;
  let end = new Date().toISOString();
  let imps = 0;
  let spend = 0;
  for (const b of want) {
    const d = await up.delivery(b.media_buy_id);
    const order = await up.getOrder(b.media_buy_id);
    const lis = order ? await up.lineItems(b.media_buy_id) : [];
    const byLine = new Map((d?.line_item_breakdown ?? []).map(x => [x.line_item_id, x]));
    const packages = b.packages.map(p => {
      const x = byLine.get(p.package_id) ?? { impressions: 0, spend: 0 };
      const rate = catalog.find(c => c.product_id === p.product_id)?.pricing?.cpm ?? 0;
      return { package_id: p.package_id, impressions: x.impressions, spend: round2(x.spend), pricing_model: 'cpm', rate, currency: b.currency };
    });
    const t = { impressions: d?.totals?.impressions ?? 0, spend: round2(d?.totals?.spend ?? 0) };
    rows.push({ media_buy_id: b.media_buy_id, status: order ? statusOf(order, lis) : 'pending_creatives', pricing_model: 'cpm', totals: t, by_package: packages });
    imps += t.impressions;
    spend += t.spend;
    if (d?.reporting_period?.start && (!start || d.reporting_period.start < start)) start = d.reporting_period.start;
    if (d?.reporting_period?.end) end = d.reporting_period.end;
  }
  return {
    reporting_period: { start: start ?? end, end },
    currency: 'USD',
    aggregated_totals: { impressions: imps, spend: round2(spend), media_buy_count: rows.length },
    media_buy_deliveries: rows,
  };
}

// Buys the agent made, by media_buy_id, for get_media_buys and revisions.
function buyBook() {
  const buys = new Map();
  return {
    put(b) {
      buys.set(b.media_buy_id, b);
    },
    get(id) {
      return buys.get(id);
    },
    forAccount(accountId) {
      return [...buys.values()].filter(b => b.account_id === accountId);
    },
  };
}

async function readBuys(up, book, req, ctx) {
  const mine = book.forAccount(ctx.account.id);
  const want = req.media_buy_ids?.length ? mine.filter(b => req.media_buy_ids.includes(b.media_buy_id)) : mine;
  const out = [];
  for (const b of want) {
    const order = await up.getOrder(b.media_buy_id);
    const lis = order ? await up.lineItems(b.media_buy_id) : [];
    out.push({
      media_buy_id: b.media_buy_id,
      status: order ? statusOf(order, lis) : 'pending_creatives',
      currency: b.currency,
      total_budget: b.total_budget,
      confirmed_at: b.confirmed_at,
      created_at: b.created_at,
      updated_at: order?.updated_at ?? b.created_at,
      revision: b.revision,
      start_time: b.start_time,
      end_time: b.end_time,
      ...(b.proposal_id && { proposal_id: b.proposal_id }),
      packages: b.packages.map(p => ({ ...packageOut(p), currency: b.currency })),
    });
  }
  return { media_buys: out };
}

// A test seller: single tenant (one token), state in memory, webhooks to
// loopback allowed (the buyer under test listens on 127.0.0.1).
process.env.NODE_ENV = 'test';

function common(name) {
  return {
    name,
    version: SDK_VERSION,
    idempotency: createIdempotencyStore({ backend: memoryBackend(), ttlSeconds: 86_400 }),
    resolveIdempotencyPrincipal: ctx => ctx.account?.id ?? 'anonymous',
    stateStore: new InMemoryStateStore(),
    taskRegistry: createInMemoryTaskRegistry(),
    allowPrivateWebhookUrls: true,
    autoEmitCompletionWebhooks: true,
  };
}

async function listen(label, platform, opts) {
  const registry = opts.taskRegistry;
  // serve() listens on every interface; the tests allow loopback only, so
  // its own listen is held back (a readiness check that never settles) and
  // the server it built listens on 127.0.0.1 here.
  const srv = serve(
    ({ taskStore }) => createAdcpServerFromPlatform(platform, { ...opts, taskStore, taskRegistry: registry }),
    {
      authenticate: verifyApiKey({ keys: { [cfg.token]: { principal: 'dealflow' } } }),
      readinessCheck: () => new Promise(() => {}),
    }
  );
  srv.on('request', req => {
    log({ seller: label, method: req.method, url: req.url, auth: req.headers.authorization ? 'bearer' : 'none' });
  });
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, HOST, resolve);
  });
  return { url: `http://${HOST}:${srv.address().port}/mcp`, srv };
}

// ---------------------------------------------------------------------------
// Guaranteed seller.
// ---------------------------------------------------------------------------

async function guaranteedSeller() {
  const up = await upstream('sales-guaranteed', 'premium-sports.example');
  const book = buyBook();
  let agentURL = '';
  const platform = {
    capabilities: {
      specialisms: ['sales-guaranteed'],
      channels: ['olv', 'ctv', 'display'],
      pricingModels: ['cpm'],
      supportedBillings: ['operator'],
      requireOperatorAuth: false,
      config: {},
    },
    accounts: accountStore(),
    sales: {
      getProducts: async req => {
        const products = await up.products({ delivery_type: 'guaranteed', ...upstreamQuery(req) });
        const fixedWanted = req.filters?.is_fixed_price;
        return {
          products:
            fixedWanted === false
              ? [] // guaranteed inventory has no auction options
              : products.map(p => ({
                  ...baseProduct(p, up.network.adcp_publisher, agentURL),
                  pricing_options: [
                    {
                      pricing_option_id: 'cpm_guaranteed_fixed',
                      pricing_model: 'cpm',
                      currency: p.pricing.currency,
                      fixed_price: p.pricing.cpm,
                      ...(p.pricing.min_spend !== undefined && { min_spend_per_package: p.pricing.min_spend }),
                    },
                  ],
                  ...(p.forecast && { forecast: p.forecast }),
                })),
          cache_scope: 'account',
        };
      },
      createMediaBuy: async (req, ctx) => {
        if (!req.packages?.length) {
          throw new AdcpError('INVALID_REQUEST', { message: 'packages are required', field: 'packages', recovery: 'correctable' });
        }
        const catalog = await up.products({ delivery_type: 'guaranteed' });
        let total = 0;
        req.packages.forEach((p, i) => {
          const prod = catalog.find(c => c.product_id === p.product_id);
          if (!prod) {
            throw new AdcpError('PRODUCT_NOT_FOUND', { message: `no product ${p.product_id}`, field: `packages[${i}].product_id`, recovery: 'correctable' });
          }
          if (p.pricing_option_id !== 'cpm_guaranteed_fixed') {
            throw new AdcpError('INVALID_REQUEST', { message: `no pricing option ${p.pricing_option_id}`, field: `packages[${i}].pricing_option_id`, recovery: 'correctable' });
          }
          centsExact(p.budget, `packages[${i}].budget`);
          if (prod.pricing.min_spend !== undefined && p.budget < prod.pricing.min_spend) {
            throw new AdcpError('BUDGET_TOO_LOW', {
              message: `packages[${i}].budget ${p.budget} is below min_spend_per_package ${prod.pricing.min_spend}`,
              field: `packages[${i}].budget`,
              recovery: 'correctable',
            });
          }
          total += p.budget;
        });
        total = round2(total);
        const order = await up.createOrder({
          name: `AdCP buy ${req.idempotency_key}`,
          advertiser_id: up.network.network_code,
          currency: 'USD',
          budget: total,
          client_request_id: req.idempotency_key,
        });
        const accountId = ctx.account.id;
        const complete = async () => {
          for (let i = 0; i < APPROVAL_POLLS * 4 && order.approval_task_id; i++) {
            const t = await up.task(order.approval_task_id);
            if (!t || t.status === 'completed') break;
            if (t.status === 'rejected') throw new AdcpError('TERMS_REJECTED', { message: 'IO review rejected the buy', recovery: 'terminal' });
            await new Promise(r => setTimeout(r, 25));
          }
          await up.getOrder(order.order_id); // approved -> delivering on read
          const packages = [];
          for (let i = 0; i < req.packages.length; i++) {
            const p = req.packages[i];
            const li = await up.createLineItem(order.order_id, {
              product_id: p.product_id,
              budget: p.budget,
              client_request_id: `${req.idempotency_key}.li.${i}`,
            });
            packages.push({ package_id: li.line_item_id, product_id: p.product_id, pricing_option_id: p.pricing_option_id, budget: p.budget });
          }
          const now = new Date().toISOString();
          const b = {
            media_buy_id: order.order_id,
            account_id: accountId,
            currency: 'USD',
            total_budget: total,
            confirmed_at: now,
            created_at: now,
            revision: 1,
            start_time: req.start_time === 'asap' ? now : req.start_time,
            end_time: req.end_time,
            packages,
          };
          book.put(b);
          const lis = await up.lineItems(order.order_id);
          const o = await up.getOrder(order.order_id);
          return {
            media_buy_id: b.media_buy_id,
            status: statusOf(o, lis),
            confirmed_at: now,
            revision: 1,
            packages: packages.map(p => ({ ...p, currency: 'USD' })),
          };
        };
        return ctx.handoffToTask(async () => complete());
      },
      updateMediaBuy: async buyId => {
        throw new AdcpError('UNSUPPORTED_FEATURE', { message: `update_media_buy is not offered (buy ${buyId})`, recovery: 'terminal' });
      },
      getMediaBuys: async (req, ctx) => readBuys(up, book, req, ctx),
      getMediaBuyDelivery: async (req, ctx) => readDelivery(up, book, req, ctx),
    },
  };
  const opts = common('dealflow-sdk-guaranteed');
  const l = await listen('guaranteed', platform, opts);
  agentURL = l.url;
  return { ...l, up };
}

// ---------------------------------------------------------------------------
// Non-guaranteed (auction) seller.
// ---------------------------------------------------------------------------

async function auctionSeller() {
  const up = await upstream('sales-non-guaranteed', 'remnant-network.example');
  const book = buyBook();
  let agentURL = '';
  const fixedOption = p => ({
    pricing_option_id: 'cpm_fixed',
    pricing_model: 'cpm',
    currency: p.pricing.currency,
    fixed_price: round2(p.pricing.target_cpm ?? p.pricing.min_cpm * 1.3),
    ...(p.pricing.min_spend !== undefined && { min_spend_per_package: p.pricing.min_spend }),
  });
  const auctionOption = p => {
    const t = p.pricing.target_cpm ?? p.pricing.min_cpm * 1.3;
    return {
      pricing_option_id: 'cpm_auction',
      pricing_model: 'cpm',
      currency: p.pricing.currency,
      floor_price: p.pricing.min_cpm,
      price_guidance: {
        p25: round2(p.pricing.min_cpm * 1.1),
        p50: round2((p.pricing.min_cpm + t) / 2),
        p75: round2(t),
        p90: round2(t * 1.2),
      },
      ...(p.pricing.min_spend !== undefined && { min_spend_per_package: p.pricing.min_spend }),
    };
  };
  const platform = {
    capabilities: {
      specialisms: ['sales-non-guaranteed'],
      channels: ['olv', 'ctv', 'display'],
      pricingModels: ['cpm'],
      supportedBillings: ['operator'],
      requireOperatorAuth: false,
      config: {},
    },
    accounts: accountStore(),
    sales: {
      getProducts: async req => {
        const products = (await up.products(upstreamQuery(req))).filter(p => p.pricing.currency === 'USD');
        // Like the SDK's own non-guaranteed example, the default answer is
        // the fixed option; auction options only when asked for
        // (is_fixed_price: false), each answer carrying only the options of
        // the type asked for, as the schema requires.
        const auction = req.filters?.is_fixed_price === false;
        return {
          products: products.map(p => ({
            ...baseProduct(p, up.network.adcp_publisher, agentURL),
            pricing_options: [auction ? auctionOption(p) : fixedOption(p)],
            ...(p.forecast && { forecast: p.forecast }),
          })),
          cache_scope: 'account',
        };
      },
      createMediaBuy: async (req, ctx) => {
        if (!req.packages?.length) {
          throw new AdcpError('INVALID_REQUEST', { message: 'packages are required', field: 'packages', recovery: 'correctable' });
        }
        const catalog = await up.products();
        let total = 0;
        const lines = req.packages.map((p, i) => {
          const prod = catalog.find(c => c.product_id === p.product_id);
          if (!prod) {
            throw new AdcpError('PRODUCT_NOT_FOUND', { message: `no product ${p.product_id}`, field: `packages[${i}].product_id`, recovery: 'correctable' });
          }
          centsExact(p.budget, `packages[${i}].budget`);
          let bid;
          if (p.pricing_option_id === 'cpm_auction') {
            if (typeof p.bid_price !== 'number' || p.bid_price < prod.pricing.min_cpm) {
              throw new AdcpError('INVALID_REQUEST', {
                message: `packages[${i}].bid_price ${p.bid_price} is below the floor ${prod.pricing.min_cpm}`,
                field: `packages[${i}].bid_price`,
                recovery: 'correctable',
              });
            }
            bid = p.bid_price;
          } else if (p.pricing_option_id !== 'cpm_fixed') {
            throw new AdcpError('INVALID_REQUEST', { message: `no pricing option ${p.pricing_option_id}`, field: `packages[${i}].pricing_option_id`, recovery: 'correctable' });
          }
          if (prod.pricing.min_spend !== undefined && p.budget < prod.pricing.min_spend) {
            throw new AdcpError('BUDGET_TOO_LOW', {
              message: `packages[${i}].budget ${p.budget} is below min_spend_per_package ${prod.pricing.min_spend}`,
              field: `packages[${i}].budget`,
              recovery: 'correctable',
            });
          }
          total += p.budget;
          return { product_id: p.product_id, budget: p.budget, pricing_option_id: p.pricing_option_id, bid_price: bid };
        });
        total = round2(total);
        const order = await up.createOrder({
          name: `AdCP buy ${req.idempotency_key}`,
          advertiser_id: up.network.network_code,
          currency: 'USD',
          budget: total,
          pacing: req.packages[0].pacing ?? 'even',
          client_request_id: req.idempotency_key,
          line_items: lines.map(l => ({ product_id: l.product_id, budget: l.budget })),
        });
        const lis = await up.lineItems(order.order_id);
        const now = new Date().toISOString();
        const packages = lines.map((l, i) => ({ package_id: lis[i]?.line_item_id ?? `${order.order_id}_${i}`, ...l }));
        const b = {
          media_buy_id: order.order_id,
          account_id: ctx.account.id,
          currency: 'USD',
          total_budget: total,
          confirmed_at: now,
          created_at: now,
          revision: 1,
          start_time: req.start_time === 'asap' ? now : req.start_time,
          end_time: req.end_time,
          packages,
        };
        book.put(b);
        return {
          media_buy_id: b.media_buy_id,
          status: statusOf(order, lis),
          confirmed_at: now,
          revision: 1,
          packages: packages.map(p => ({ ...p, currency: 'USD' })),
        };
      },
      updateMediaBuy: async (buyId, patch, ctx) => updateBuy(up, book, buyId, patch, ctx),
      getMediaBuys: async (req, ctx) => readBuys(up, book, req, ctx),
      getMediaBuyDelivery: async () => ({
        reporting_period: { start: new Date().toISOString(), end: new Date().toISOString() },
        currency: 'USD',
        media_buy_deliveries: [],
      }),
    },
  };
  const l = await listen('auction', platform, common('dealflow-sdk-auction'));
  agentURL = l.url;
  return { ...l, up };
}

// ---------------------------------------------------------------------------
// Proposal-mode seller.
// ---------------------------------------------------------------------------

async function proposalSeller() {
  const up = await upstream('sales-guaranteed', 'premium-sports.example');
  const book = buyBook();
  const proposals = new Map(); // proposal_id -> {proposal, account_id}
  let agentURL = '';
  const draft = (accountId, products) => {
    // Two plans over the seller's guaranteed products: a single-product
    // plan on the cheapest one, and a balanced plan across all of them.
    const sorted = [...products].sort((a, b) => a.pricing.cpm - b.pricing.cpm);
    const plans = [];
    if (sorted[0]) {
      plans.push({ name: `${sorted[0].name} plan`, allocations: [{ product: sorted[0], pct: 100 }] });
    }
    if (sorted.length > 1) {
      const pct = Math.floor(100 / sorted.length);
      plans.push({
        name: 'Balanced reach plan',
        allocations: sorted.map((p, i) => ({ product: p, pct: i === 0 ? 100 - pct * (sorted.length - 1) : pct })),
      });
    }
    return plans.map(pl => {
      const id = `prop_${randomUUID().slice(0, 8)}`;
      const proposal = {
        proposal_id: id,
        name: pl.name,
        description: `A curated plan: ${pl.allocations.map(a => `${a.pct}% ${a.product.product_id}`).join(', ')}`,
        proposal_status: 'draft',
        allocations: pl.allocations.map(a => ({
          product_id: a.product.product_id,
          allocation_percentage: a.pct,
          pricing_option_id: 'cpm_guaranteed_fixed',
          rationale: `${a.product.channel} at ${a.product.pricing.cpm} CPM`,
        })),
        total_budget_guidance: {
          min: Math.max(...pl.allocations.map(a => ((a.product.pricing.min_spend ?? 0) * 100) / a.pct)),
          currency: 'USD',
        },
      };
      proposals.set(id, { proposal, account_id: accountId });
      return proposal;
    });
  };
  const view = async () => (await up.products({ delivery_type: 'guaranteed' }));
  const productsOut = (products, q) =>
    products.map(p => ({
      ...baseProduct(p, up.network.adcp_publisher, agentURL),
      pricing_options: [
        {
          pricing_option_id: 'cpm_guaranteed_fixed',
          pricing_model: 'cpm',
          currency: p.pricing.currency,
          fixed_price: p.pricing.cpm,
          ...(p.pricing.min_spend !== undefined && { min_spend_per_package: p.pricing.min_spend }),
        },
      ],
      ...(q && p.forecast && { forecast: p.forecast }),
    }));
  const platform = {
    capabilities: {
      specialisms: ['sales-proposal-mode'],
      channels: ['olv', 'ctv', 'display'],
      pricingModels: ['cpm'],
      supportedBillings: ['operator'],
      requireOperatorAuth: false,
      config: {},
    },
    accounts: accountStore(),
    sales: {
      getProducts: async (req, ctx) => {
        const products = await up.products({ delivery_type: 'guaranteed', ...upstreamQuery(req) });
        if (req.buying_mode !== 'refine') {
          return { products: productsOut(products, true), proposals: draft(ctx.account.id, products), cache_scope: 'account' };
        }
        const out = [];
        const applied = [];
        for (const r of req.refine ?? []) {
          if (r.scope !== 'proposal') {
            applied.push({ scope: r.scope, status: 'unable', notes: 'this seller refines proposals only' });
            continue;
          }
          const e = proposals.get(r.proposal_id);
          if (!e || e.account_id !== ctx.account.id) {
            throw new AdcpError('PROPOSAL_NOT_FOUND', { message: `no proposal ${r.proposal_id}`, field: 'refine.proposal_id', recovery: 'correctable' });
          }
          if (r.action === 'omit') {
            applied.push({ scope: 'proposal', proposal_id: r.proposal_id, status: 'applied' });
            continue;
          }
          if (r.action === 'finalize') {
            e.proposal = { ...e.proposal, proposal_status: 'committed', expires_at: new Date(Date.now() + PROPOSAL_HOLD_MS).toISOString() };
            e.committedAt = Date.now();
          }
          out.push(e.proposal);
          applied.push({ scope: 'proposal', proposal_id: r.proposal_id, status: 'applied' });
        }
        return { products: productsOut(products, false), proposals: out, refinement_applied: applied, cache_scope: 'account' };
      },
      createMediaBuy: async (req, ctx) => {
        if (!req.proposal_id) {
          throw new AdcpError('UNSUPPORTED_FEATURE', {
            message: 'this seller sells through proposals only: send proposal_id + total_budget',
            field: 'packages',
            recovery: 'correctable',
          });
        }
        const e = proposals.get(req.proposal_id);
        if (!e || e.account_id !== ctx.account.id) {
          throw new AdcpError('PROPOSAL_NOT_FOUND', { message: `no proposal ${req.proposal_id}`, field: 'proposal_id', recovery: 'correctable' });
        }
        if (e.proposal.proposal_status !== 'committed') {
          throw new AdcpError('PROPOSAL_NOT_COMMITTED', { message: `proposal ${req.proposal_id} is a draft: finalize it first`, field: 'proposal_id', recovery: 'correctable' });
        }
        if (Date.parse(e.proposal.expires_at) <= Date.now()) {
          throw new AdcpError('PROPOSAL_EXPIRED', { message: `proposal ${req.proposal_id} expired`, field: 'proposal_id', recovery: 'correctable' });
        }
        const total = req.total_budget?.amount;
        if (typeof total !== 'number' || total <= 0) {
          throw new AdcpError('INVALID_REQUEST', { message: 'total_budget is required', field: 'total_budget', recovery: 'correctable' });
        }
        centsExact(total, 'total_budget.amount');
        const catalog = await view();
        // Allocation budgets in cents; the first allocation takes the
        // rounding remainder so the packages sum to total_budget exactly.
        const cents = Math.round(total * 100);
        const allocs = e.proposal.allocations;
        const shares = allocs.map(a => Math.floor((cents * a.allocation_percentage) / 100));
        shares[0] += cents - shares.reduce((s, x) => s + x, 0);
        allocs.forEach((a, i) => {
          const prod = catalog.find(c => c.product_id === a.product_id);
          if (prod?.pricing.min_spend !== undefined && shares[i] / 100 < prod.pricing.min_spend) {
            throw new AdcpError('BUDGET_TOO_LOW', {
              message: `total_budget ${total} gives ${a.product_id} ${shares[i] / 100}, below its min_spend_per_package ${prod.pricing.min_spend}`,
              field: 'total_budget.amount',
              recovery: 'correctable',
            });
          }
        });
        const order = await up.createOrder({
          name: `AdCP proposal buy ${req.proposal_id}`,
          advertiser_id: up.network.network_code,
          currency: 'USD',
          budget: total,
          client_request_id: req.idempotency_key,
        });
        // A committed proposal is pre-approved: read the IO task through.
        for (let i = 0; i < APPROVAL_POLLS * 4 && order.approval_task_id; i++) {
          const t = await up.task(order.approval_task_id);
          if (!t || t.status === 'completed') break;
          await new Promise(r => setTimeout(r, 10));
        }
        await up.getOrder(order.order_id);
        const packages = [];
        for (let i = 0; i < allocs.length; i++) {
          const li = await up.createLineItem(order.order_id, {
            product_id: allocs[i].product_id,
            budget: shares[i] / 100,
            client_request_id: `${req.idempotency_key}.li.${i}`,
          });
          packages.push({ package_id: li.line_item_id, product_id: allocs[i].product_id, pricing_option_id: allocs[i].pricing_option_id, budget: shares[i] / 100 });
        }
        const now = new Date().toISOString();
        const b = {
          media_buy_id: order.order_id,
          account_id: ctx.account.id,
          currency: 'USD',
          total_budget: total,
          confirmed_at: now,
          created_at: now,
          revision: 1,
          start_time: req.start_time === 'asap' ? now : req.start_time,
          end_time: req.end_time,
          proposal_id: req.proposal_id,
          packages,
        };
        book.put(b);
        const lis = await up.lineItems(order.order_id);
        const o = await up.getOrder(order.order_id);
        return {
          media_buy_id: b.media_buy_id,
          status: statusOf(o, lis),
          confirmed_at: now,
          revision: 1,
          packages: packages.map(p => ({ ...p, currency: 'USD' })),
        };
      },
      updateMediaBuy: async buyId => {
        throw new AdcpError('UNSUPPORTED_FEATURE', { message: `update_media_buy is not offered (buy ${buyId})`, recovery: 'terminal' });
      },
      getMediaBuys: async (req, ctx) => readBuys(up, book, req, ctx),
      getMediaBuyDelivery: async () => ({
        reporting_period: { start: new Date().toISOString(), end: new Date().toISOString() },
        currency: 'USD',
        media_buy_deliveries: [],
      }),
    },
  };
  const l = await listen('proposal', platform, common('dealflow-sdk-proposal'));
  agentURL = l.url;
  return { ...l, up };
}

const sellers = { guaranteed: await guaranteedSeller(), auction: await auctionSeller(), proposal: await proposalSeller() };
process.stdout.write(
  JSON.stringify({
    guaranteed: sellers.guaranteed.url,
    auction: sellers.auction.url,
    proposal: sellers.proposal.url,
    sdk: SDK_VERSION,
    adcp: require('@adcp/sdk/package.json').adcp_version ?? null,
  }) + '\n'
);

// The Go test that started this process ends it by closing stdin (or by
// killing it): either way every server goes down with the process.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

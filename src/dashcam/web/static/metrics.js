// The invocation metrics the Overview and Models pages compute with Logs Insights.

import { quote } from "./app.js";

/** One stats clause for every headline metric; rows carry these names. */
export const METRICS = [
  "count(*) as requests",
  "count(errorCode) as failed",
  "sum(throttled) as throttles",
  "pct(latencyMs, 50) as p50",
  "pct(latencyMs, 90) as p90",
  "pct(latencyMs, 99) as p99",
  "pct(timeToFirstTokenMs, 50) as ttft50",
  "pct(timeToFirstTokenMs, 90) as ttft90",
  "sum(input.inputTokenCount) as inputTokens",
  "sum(output.outputTokenCount) as outputTokens",
  "sum(costUsd) as cost",
].join(", ");

/** The filter a model selection adds in front of a query ("" for all models). */
export function modelFilter(models) {
  if (!models || !models.length) return "";
  return `filter modelId in [${models.map(quote).join(", ")}]\n| `;
}

/** Rates derived from a metrics row: errors exclude throttling, which has its own rate. */
export function derived(row) {
  const requests = row?.requests || 0;
  const throttles = row?.throttles || 0;
  const errors = Math.max(0, (row?.failed || 0) - throttles);
  const output = row?.outputTokens || 0;
  return {
    requests,
    errors,
    throttles,
    errorRate: requests ? errors / requests : null,
    throttleRate: requests ? throttles / requests : null,
    costPerRequest: requests && row?.cost != null ? row.cost / requests : null,
    costPer1kOutput: output && row?.cost != null ? (row.cost / output) * 1000 : null,
  };
}

/** The models seen in a range, busiest first (the colour order every chart shares). */
export async function modelsInRange(ctx, range, signal) {
  const result = await ctx.runQuery("stats count(*) as requests by modelId | sort requests desc",
    { start: range.start, end: range.end, signal, limit: 1000 });
  return result.rows.map((r) => r.modelId);
}

// How the AWS/Bedrock metrics are shown: the chart unit of charts.js's scaleFor, from the metric's
// CloudWatch unit (GET /api/v1/metric-definitions); cost is in dollars though CloudWatch says "None".
const UNIT_KINDS = { Milliseconds: "ms", Percent: "pct", "Count/Second": "rate" };
const KNOWN_UNITS = { InvocationLatency: "Milliseconds", TimeToFirstToken: "Milliseconds", ErrorRate: "Percent",
  OutputTokensPerSecond: "Count/Second" };

/** The chart unit of a metric ("ms", "usd", "pct", "rate" or "int"); `unit` is its CloudWatch unit when known. */
export function metricUnit(name, unit) {
  if (name === "CostUSD") return "usd";
  return UNIT_KINDS[unit || KNOWN_UNITS[name]] || "int";
}

let definitions = null;

/** The metrics dashcam serves: [{name, unit, description, origin}] (fetched once). */
export async function metricDefinitions(ctx, signal) {
  definitions = definitions || ctx.api("/api/v1/metric-definitions", { signal });
  try {
    return await definitions;
  } catch (error) {
    definitions = null;
    throw error;
  }
}

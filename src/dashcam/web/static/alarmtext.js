// What an alarm watches, in words and as metric queries: shared by the Alarms list and one alarm's page.
//
// Definitions are PutMetricAlarm's members as GET /api/v1/alarms answers them (see
// src/dashcam/alarms/model.py): one metric (MetricName, Statistic or ExtendedStatistic, ...), or
// Metrics entries (MetricStat or Expression), of kind static, anomaly or query.

import { fmtCompact, fmtMs, fmtPct, fmtUsd, h } from "./format.js";
import { metricUnit } from "./metrics.js";

export const STATE_WORDS = { ALARM: "In alarm", OK: "OK", INSUFFICIENT_DATA: "Insufficient data" };
const STATE_TONES = { ALARM: "bad", OK: "good", INSUFFICIENT_DATA: "warn" };

const OPERATORS = {
  GreaterThanOrEqualToThreshold: "≥",
  GreaterThanThreshold: ">",
  LessThanThreshold: "<",
  LessThanOrEqualToThreshold: "≤",
  LessThanLowerOrGreaterThanUpperThreshold: "outside the band",
  LessThanLowerThreshold: "below the band",
  GreaterThanUpperThreshold: "above the band",
};
const MISSING = {
  missing: "missing data: insufficient data",
  ignore: "missing data: keep the state",
  breaching: "missing data: breaching",
  notBreaching: "missing data: not breaching",
};
const BAND = /^\s*ANOMALY_DETECTION_BAND\(\s*([a-z][A-Za-z0-9_]*)\s*(?:,\s*([0-9.]+)\s*)?\)\s*$/i;
const SOURCE = /^\s*SOURCE\b/i;

/** A state as a coloured pill. */
export function statePill(state) {
  return h("span", { class: `pill ${STATE_TONES[state] || ""}`, "data-state": state }, STATE_WORDS[state] || state);
}

/** "5 min", "1 hour", "1 day" for a period in seconds. */
export function periodWords(seconds) {
  if (seconds % 86400 === 0) return seconds === 86400 ? "1 day" : `${seconds / 86400} days`;
  if (seconds % 3600 === 0) return seconds === 3600 ? "1 hour" : `${seconds / 3600} hours`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

function dimensionsText(dimensions) {
  const list = (dimensions || []).map((d) => `${d.Name}=${d.Value}`);
  return list.length ? ` (${list.join(", ")})` : "";
}

/** The parts of an alarm: {kind, watched, band, query, period, entries}, from its definition. */
export function alarmParts(alarm) {
  const def = alarm.definition;
  if (def.MetricName) {
    const stat = def.Statistic || def.ExtendedStatistic;
    const metric = { id: "m1", metricName: def.MetricName, stat, period: def.Period, dimensions: def.Dimensions || [] };
    return { kind: alarm.kind, period: def.Period, entries: [metric], watched: metric, band: null, query: null };
  }
  const entries = (def.Metrics || []).map((entry) => {
    const stat = entry.MetricStat;
    return {
      id: entry.Id,
      label: entry.Label,
      expression: entry.Expression,
      returnData: entry.ReturnData !== false,
      metricName: stat?.Metric?.MetricName,
      stat: stat?.Stat,
      period: stat?.Period || entry.Period,
      dimensions: stat?.Metric?.Dimensions || [],
    };
  });
  const period = entries.find((e) => e.period)?.period || 60;
  if (alarm.kind === "query") {
    const query = entries.find((e) => e.expression && SOURCE.test(e.expression));
    return { kind: "query", period, entries, watched: query, band: null, query };
  }
  if (alarm.kind === "anomaly") {
    const bandEntry = entries.find((e) => e.id === def.ThresholdMetricId);
    const match = BAND.exec(bandEntry?.expression || "");
    const watched = entries.find((e) => e.id === match?.[1]) || entries.find((e) => e !== bandEntry && e.returnData);
    return { kind: "anomaly", period, entries, watched, band: { id: bandEntry?.id, width: Number(match?.[2] || 2) }, query: null };
  }
  const watched = entries.find((e) => e.returnData) || entries[0];
  return { kind: "static", period, entries, watched, band: null, query: null };
}

/** What the watched series is, in words: "InvocationThrottles Sum (ModelId=x) per 5 min". */
export function watchedText(parts) {
  const w = parts.watched;
  if (!w) return "(nothing)";
  if (parts.kind === "query") return `Logs Insights query per ${periodWords(parts.period)}`;
  if (w.metricName) return `${w.metricName} ${w.stat}${dimensionsText(w.dimensions)} per ${periodWords(w.period || parts.period)}`;
  return `${w.label || w.id} = ${w.expression} per ${periodWords(parts.period)}`;
}

/** The whole condition in words: "InvocationThrottles Sum per 5 min ≥ 5 for 2 of 3 periods". */
export function conditionText(alarm) {
  const def = alarm.definition;
  const parts = alarmParts(alarm);
  const operator = OPERATORS[def.ComparisonOperator] || def.ComparisonOperator;
  const compared = parts.kind === "anomaly" ? `${operator} (width ${parts.band.width})` : `${operator} ${def.Threshold}`;
  const n = def.EvaluationPeriods;
  const m = def.DatapointsToAlarm || n;
  const periods = n === 1 ? "for 1 period" : `for ${m} of ${n} periods`;
  return `${watchedText(parts)} ${compared} ${periods}`;
}

/** How missing data is treated, in words. */
export function missingText(alarm) {
  return MISSING[alarm.definition.TreatMissingData || "missing"];
}

/** The alarm's metric queries for POST /api/v1/metrics (none for a query alarm). */
export function metricQueries(parts) {
  if (parts.kind === "query") return [];
  return parts.entries.map((entry) => {
    const query = { id: entry.id, returnData: entry === parts.watched || entry.id === parts.band?.id };
    if (entry.label) query.label = entry.label;
    if (entry.metricName) {
      query.metricStat = { metricName: entry.metricName, stat: entry.stat, period: entry.period || parts.period,
        dimensions: Object.fromEntries((entry.dimensions || []).map((d) => [d.Name, d.Value])) };
    } else query.expression = entry.expression;
    return query;
  });
}

/** Every action the alarm runs, by state: [[state, [action, ...]], ...]. */
export function actionsByState(alarm) {
  const def = alarm.definition;
  return [["ALARM", def.AlarmActions || []], ["OK", def.OKActions || []], ["INSUFFICIENT_DATA", def.InsufficientDataActions || []]];
}

/** A value of the alarm's watched series, in its metric's unit (345 ms, $0.42, 2.5%). */
export function formatValue(parts, value) {
  if (value == null) return "–";
  const unit = parts.watched?.metricName ? metricUnit(parts.watched.metricName) : "int";
  if (unit === "ms") return fmtMs(value);
  if (unit === "usd") return fmtUsd(value);
  if (unit === "pct") return fmtPct(value / 100);
  return fmtCompact(value);
}

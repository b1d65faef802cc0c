-- Prints one machine-readable line after a wrk run: the exact request count and
-- duration, the latency percentiles wrk's --latency table lacks (p99.9), and the
-- error counts. Only done() is defined, so wrk keeps its fast request path.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "GATEHOUSE-WRK requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end

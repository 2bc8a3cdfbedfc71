using System.Globalization;
using System.Text;

namespace XDit.Server;

/// <summary>Request counters and a latency histogram, written in Prometheus' text format.</summary>
public sealed class Metrics
{
    static readonly double[] Buckets = [0.5, 1, 2, 5, 10, 30, 60, 120, 300];
    readonly object _gate = new();
    readonly Dictionary<int, long> _byStatus = new();
    readonly long[] _bucketCounts = new long[Buckets.Length];
    long _count;
    double _sum;

    public void Record(int status, TimeSpan duration)
    {
        lock (_gate)
        {
            _byStatus[status] = _byStatus.GetValueOrDefault(status) + 1;
            if (status != 200) return;
            _count++;
            _sum += duration.TotalSeconds;
            for (int i = 0; i < Buckets.Length; i++)
                if (duration.TotalSeconds <= Buckets[i]) _bucketCounts[i]++;
        }
    }

    public string Render(int queueDepth, AllocatorStats memory)
    {
        var text = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        lock (_gate)
        {
            text.AppendLine("# HELP xdit_requests_total Generate requests by HTTP status.");
            text.AppendLine("# TYPE xdit_requests_total counter");
            foreach (var (status, count) in _byStatus.OrderBy(p => p.Key))
                text.AppendLine(c, $"xdit_requests_total{{status=\"{status}\"}} {count}");
            text.AppendLine("# HELP xdit_request_duration_seconds Latency of successful generate requests.");
            text.AppendLine("# TYPE xdit_request_duration_seconds histogram");
            for (int i = 0; i < Buckets.Length; i++)
                text.AppendLine(c, $"xdit_request_duration_seconds_bucket{{le=\"{Buckets[i]}\"}} {_bucketCounts[i]}");
            text.AppendLine(c, $"xdit_request_duration_seconds_bucket{{le=\"+Inf\"}} {_count}");
            text.AppendLine(c, $"xdit_request_duration_seconds_sum {_sum}");
            text.AppendLine(c, $"xdit_request_duration_seconds_count {_count}");
        }
        text.AppendLine("# HELP xdit_queue_depth Requests waiting or running.");
        text.AppendLine("# TYPE xdit_queue_depth gauge");
        text.AppendLine(c, $"xdit_queue_depth {queueDepth}");
        text.AppendLine("# HELP xdit_device_memory_bytes Bytes held by the engine's context allocator.");
        text.AppendLine("# TYPE xdit_device_memory_bytes gauge");
        text.AppendLine(c, $"xdit_device_memory_bytes{{kind=\"in_use\"}} {memory.BytesInUse}");
        text.AppendLine(c, $"xdit_device_memory_bytes{{kind=\"peak\"}} {memory.PeakBytesInUse}");
        text.AppendLine(c, $"xdit_device_memory_bytes{{kind=\"reserved\"}} {memory.BytesReserved}");
        return text.ToString();
    }
}

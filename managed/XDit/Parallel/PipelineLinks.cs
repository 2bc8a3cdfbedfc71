using XDit.Ops;
using XDit.Tensors;
using Item = XDit.Parallel.PipeFusionSchedule.Item;

namespace XDit.Parallel;

/// <summary>
/// The messages of one PipeFusion stage rank, all point to point and all known from the schedule: every
/// stage but the last sends each item's hidden states to the next stage; the last stage sends each item's
/// new latent rows back to stage 0 unless the item is in the last step (nobody embeds those rows again),
/// and stage 0 takes them, in order, when an item embeds rows that a previous item changed. Sends are
/// posted and left in flight while the stage computes on; a stage waits for its hidden-state sends two
/// items later (so their memory returns) and for the latent sends at the end.
/// </summary>
internal sealed class PipelineLinks : IDisposable
{
    readonly ICommunicator _pipeline;
    readonly IPipeFusionModel _model;
    readonly PipeFusionSchedule _schedule;
    readonly Tensor _latent;
    readonly int _stage, _last;
    readonly List<Item> _latentMessages;
    readonly Dictionary<Item, int> _latentIndex;
    int _latentReceived;
    readonly Queue<ICommRequest> _hiddenSends = new();
    readonly List<ICommRequest> _latentSends = [];

    public PipelineLinks(ICommunicator pipeline, IPipeFusionModel model, PipeFusionSchedule schedule, Tensor latent, int steps)
    {
        (_pipeline, _model, _schedule, _latent) = (pipeline, model, schedule, latent);
        _stage = pipeline.Rank;
        _last = pipeline.Size - 1;
        _latentMessages = _last == 0 ? [] : schedule.Items.Where(i => i.Step < steps - 1).ToList();
        _latentIndex = _latentMessages.Select((item, index) => (item, index)).ToDictionary(p => p.item, p => p.index);
    }

    /// <summary>Stage 0: makes sure the latent rows that <paramref name="after"/> changed are back from the
    /// last stage (taking the last stage's messages in order up to that one).</summary>
    public void AwaitLatentRows(Item? after)
    {
        if (after is null || !_latentIndex.TryGetValue(after, out var index)) return;
        while (_latentReceived <= index) ReceiveLatentRows();
    }

    /// <summary>The hidden states of <paramref name="item"/> from the previous stage, in the current scope.</summary>
    public Tensor ReceiveHidden(Item item)
    {
        var hidden = Tensor.Empty(_latent.Context, _latent.DType, _model.HiddenShape(item.Band));
        _pipeline.Receive(hidden, _stage - 1);
        return hidden;
    }

    public void SendHidden(Item item, Tensor hidden)
    {
        var planned = _model.HiddenShape(item.Band);
        if (!Shapes.Equal(hidden.Shape, planned) || hidden.DType != _latent.DType)
            throw new XDitException(Native.XditStatus.Internal,
                $"PipeFusion stage {_stage} produced {hidden.DType.Name()} {hidden.ShapeString} for {item.Band}, not the planned " +
                $"{_latent.DType.Name()} [{string.Join(", ", planned)}]");
        _hiddenSends.Enqueue(_pipeline.PostSend(hidden, _stage + 1));
        // The next stage took the item before last by now (it computes in item order), so this returns at once.
        while (_hiddenSends.Count > 2) Complete(_hiddenSends.Dequeue());
    }

    /// <summary>Last stage: posts <paramref name="item"/>'s new latent rows to stage 0 when a later item embeds them.</summary>
    public void SendLatentRows(Item item)
    {
        if (!_latentIndex.ContainsKey(item)) return;
        using var rows = _model.LatentBand(_latent, item.Band);
        using var copy = rows.Clone(); // the request holds its own reference; the latent may change meanwhile
        _latentSends.Add(_pipeline.PostSend(copy, 0));
    }

    /// <summary>After the last tick: every send has been taken.</summary>
    public void Finish()
    {
        while (_hiddenSends.Count > 0) Complete(_hiddenSends.Dequeue());
        foreach (var send in _latentSends) Complete(send);
        _latentSends.Clear();
    }

    /// <summary>After every rank stopped before <paramref name="tick"/> (an agreed cancellation): takes the
    /// messages already posted to this stage — its input for that tick, and at stage 0 the latent rows the
    /// last stage sent before it — so that nothing is left in the channels for the next request.</summary>
    public void Drain(int tick)
    {
        if (_stage > 0 && _schedule.At(_stage, tick) is { } pending)
            ReceiveHidden(pending).Dispose();
        while (_stage == 0 && _latentReceived < _latentMessages.Count && _latentMessages[_latentReceived].Start + _last < tick)
            ReceiveLatentRows();
        Finish();
    }

    void ReceiveLatentRows()
    {
        var item = _latentMessages[_latentReceived];
        using var rows = _model.LatentBand(_latent, item.Band);
        using var message = Tensor.Empty(_latent.Context, _latent.DType, rows.Shape.ToArray());
        _pipeline.Receive(message, _last);
        Elementwise.Copy(message, rows);
        _latentReceived++;
    }

    static void Complete(ICommRequest request)
    {
        using (request) request.Wait();
    }

    /// <summary>Abandons what is still in flight (after an error: the group is broken by then).</summary>
    public void Dispose()
    {
        foreach (var send in _hiddenSends) send.Dispose();
        foreach (var send in _latentSends) send.Dispose();
    }
}

namespace XDit.Rng;

/// <summary>
/// The 32-bit Mersenne Twister MT19937 (Matsumoto &amp; Nishimura 1998), the engine behind PyTorch's CPU
/// generator. Its output for a seed equals C++'s <c>std::mt19937</c> and PyTorch's <c>at::mt19937</c>:
/// the state is initialised from the low 32 bits of the seed with the 1812433253 recurrence, and the
/// whole state is regenerated (twisted) every 624 outputs.
/// </summary>
internal sealed class MersenneTwister19937
{
    const int StateSize = 624;
    const int ShiftSize = 397;
    const uint MatrixA = 0x9908b0df;
    const uint UpperMask = 0x80000000;
    const uint LowerMask = 0x7fffffff;

    readonly uint[] _state = new uint[StateSize];
    int _next;

    /// <summary>Seeds the engine. Like PyTorch's <c>manual_seed</c>, only the low 32 bits of
    /// <paramref name="seed"/> take part: seeds that differ above bit 31 give the same sequence.</summary>
    public MersenneTwister19937(ulong seed)
    {
        _state[0] = (uint)seed;
        for (uint i = 1; i < StateSize; i++)
            _state[i] = 1812433253u * (_state[i - 1] ^ (_state[i - 1] >> 30)) + i;
        _next = StateSize;
    }

    /// <summary>The next 32 random bits.</summary>
    public uint NextUInt32()
    {
        if (_next == StateSize) Twist();
        uint y = _state[_next++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >> 18;
        return y;
    }

    /// <summary>64 random bits as PyTorch's <c>random64()</c> makes them: the first 32-bit draw is the
    /// high half, the second the low half.</summary>
    public ulong NextUInt64()
    {
        ulong high = NextUInt32();
        return (high << 32) | NextUInt32();
    }

    /// <summary>Regenerates the state in place: element i mixes elements i and i+1 (mod 624) with
    /// element i+397 (mod 624), which for the last 227 elements is already the new value.</summary>
    void Twist()
    {
        var s = _state;
        int i = 0;
        for (; i < StateSize - ShiftSize; i++) s[i] = Mix(s[i], s[i + 1], s[i + ShiftSize]);
        for (; i < StateSize - 1; i++) s[i] = Mix(s[i], s[i + 1], s[i + ShiftSize - StateSize]);
        s[i] = Mix(s[i], s[0], s[ShiftSize - 1]);
        _next = 0;
    }

    static uint Mix(uint current, uint following, uint distant)
    {
        uint y = (current & UpperMask) | (following & LowerMask);
        return distant ^ (y >> 1) ^ ((y & 1) != 0 ? MatrixA : 0u);
    }
}

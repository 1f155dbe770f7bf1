"""Array views that hold no reference to their owner, for the hot loops of the numba kernels.

Numba counts references to an array's memory: every view a kernel makes (``x[row]``, ``v[b]``,
an array handed to an inlined helper) increments the owner's count on creation and decrements it
when dropped, unless its pruning pass can pair the two, which fails across the branches of a
kernel's row loop. Each count change is an atomic add (a ``lock``-prefixed instruction), which
waits until every store in flight has reached the cache: after a LIF step's 48 vector stores that
costs more than the step. Views of a ``borrow``-ed array carry no owner, so numba's count calls
return at once. Measured with ``benchmarks/profile_w1.py`` before and after: W3's pair kernel
0.83 -> 0.70 ms, W1's 1.05 -> 0.92 ms.

The owner must outlive the borrowed array: a function's arguments do (its caller holds them); an
array the function allocates itself numba frees after its last use, so ``keep(owner)`` after the
loop holds it to there. A thread's scratch rows are best allocated that way, by the thread: borrowed
rows of an argument made W3's forward kernel slower (0.77 ms against 0.71).
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def borrow(typingctx, arr):
    """``arr`` (same type, same data) without its owner: views of it are never counted."""

    def codegen(context, builder, sig, args):
        src = context.make_array(sig.args[0])(context, builder, value=args[0])
        out = context.make_array(sig.return_type)(context, builder)
        for field in ("nitems", "itemsize", "data", "shape", "strides"):
            setattr(out, field, getattr(src, field))
        out.meminfo = cgutils.get_null_value(out.meminfo.type)
        out.parent = cgutils.get_null_value(out.parent.type)
        return out._getvalue()
    return arr(arr), codegen


@intrinsic
def keep(typingctx, arr):
    """A use of ``arr`` that does nothing: numba keeps an owner allocated in a function alive up to
    its last use, so ``keep(owner)`` after the loop that works on ``borrow(owner)`` holds it there."""

    def codegen(context, builder, sig, args):
        return context.get_dummy_value()
    return types.none(arr), codegen

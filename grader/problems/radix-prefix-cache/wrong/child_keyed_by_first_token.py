import heapq
import itertools
from collections import deque

from engine.block_allocator import BlockAllocator
from engine.sequence import Sequence


class Node:
    """One full KV block in the tree: its tokens are the edge from `parent`."""

    __slots__ = ("block", "children", "last_access", "parent", "tokens")

    def __init__(self, block: int, tokens: tuple, parent: "Node | None") -> None:
        self.block, self.tokens, self.parent = block, tokens, parent
        self.children: dict[tuple, Node] = {}
        self.last_access = 0


class RadixPrefixCache(BlockAllocator):
    """Wrong: children are keyed by the first token of their block, as a token-level radix
    tree keys its edges, and a lookup takes a child whose first token matches without
    comparing the rest of the block: two prompts that part in the middle of a block get the
    first one's block, which holds other tokens."""

    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True):
        super().__init__(num_blocks, block_size, enable_prefix_caching)
        self.refs = [0] * num_blocks
        self.node_of: dict[int, Node] = {}  # block -> its node, for blocks in the tree
        self.root = Node(-1, (), None)
        self.pool = deque(range(num_blocks))  # blocks outside the tree and unreferenced
        self.held = 0  # blocks with a reference
        self.leaves: list[tuple[int, int, Node]] = []  # (stamp, tiebreak, leaf), lazily deleted
        self.clock = itertools.count(1)
        self.cursor: dict[int, Node] = {}  # seq_id -> the tree node its cached blocks end at
        self.copies: list[tuple[int, int]] = []

    @property
    def num_free_blocks(self) -> int:
        return self.num_blocks - self.held

    def _block_tokens(self, tokens: list[int], index: int) -> tuple:
        return tuple(tokens[index * self.block_size : (index + 1) * self.block_size])

    def _ref(self, block: int) -> None:
        if self.refs[block] == 0:
            self.held += 1
        self.refs[block] += 1

    def _unref(self, block: int) -> None:
        self.refs[block] -= 1
        if self.refs[block]:
            return
        self.held -= 1
        node = self.node_of.get(block)
        if node is None:
            self.pool.append(block)
        elif not node.children:
            self._evictable(node)

    def _evictable(self, node: Node) -> None:
        heapq.heappush(self.leaves, (node.last_access, next(self.clock), node))

    def _fresh(self) -> int:
        """A block for new content: a never-used or released one first, else evict the least
        recently used unreferenced leaf (its parent may become one)."""
        if self.pool:
            block = self.pool.popleft()
        else:
            while True:
                stamp, _, node = heapq.heappop(self.leaves)
                block = node.block
                if (
                    self.node_of.get(block) is node
                    and not node.children
                    and not self.refs[block]
                    and stamp == node.last_access
                ):
                    break
            del self.node_of[block], node.parent.children[node.tokens[0]]
            parent = node.parent
            if parent is not self.root and not parent.children and not self.refs[parent.block]:
                self._evictable(parent)
        self._ref(block)
        return block

    def _touch(self, node: Node) -> None:
        """Mark a path used now; an unreferenced leaf re-enters the heap with its new stamp."""
        stamp = next(self.clock)
        while node is not self.root:
            node.last_access = stamp
            if not node.children and not self.refs[node.block]:
                self._evictable(node)
            node = node.parent

    def allocate_prefix(self, seq: Sequence) -> int:
        node = self.root
        if self.enable_prefix_caching:
            known = seq.all_token_ids[:-1]
            for index in range(len(known) // self.block_size):
                child = node.children.get(self._block_tokens(known, index)[0])
                if child is None:
                    break
                self._ref(child.block)
                seq.block_table.append(child.block)
                node = child
            self._touch(node)
        self.cursor[seq.seq_id] = node
        seq.num_cached_blocks = len(seq.block_table)
        return len(seq.block_table) * self.block_size

    def append_slots(self, seq: Sequence, num_new_tokens: int) -> bool:
        table = seq.block_table
        first = seq.num_computed_tokens // self.block_size
        grow = max(self.blocks_needed(seq.num_computed_tokens + num_new_tokens) - len(table), 0)
        cow = first < len(table) and self.refs[table[first]] > 1
        if grow + cow > self.num_free_blocks:
            return False
        if cow:
            fresh = self._fresh()
            self._unref(table[first])
            self.copies.append((table[first], fresh))
            table[first] = fresh
        table.extend(self._fresh() for _ in range(grow))
        return True

    def cache_full_blocks(self, seq: Sequence) -> None:
        if not self.enable_prefix_caching:
            return
        full = min(seq.num_computed_tokens // self.block_size, len(seq.block_table))
        if full <= seq.num_cached_blocks:
            return
        node = self.cursor.get(seq.seq_id)
        for index in range(seq.num_cached_blocks, full):
            if node is None:
                break
            tokens = self._block_tokens(seq.token_ids, index)
            child = node.children.get(tokens[0])
            if child is None:
                block = seq.block_table[index]
                child = node.children[tokens[0]] = Node(block, tokens, node)
                self.node_of[block] = child
            elif child.block != seq.block_table[index]:
                # The same content was computed twice at once and the tree holds the other
                # copy: this sequence's blocks from here on stay its own (back to the pool
                # when released), so every node a sequence holds has its ancestors held too.
                node = None
                break
            node = child
        self.cursor[seq.seq_id] = node
        seq.num_cached_blocks = full

    def free(self, seq: Sequence) -> None:
        node = self.cursor.pop(seq.seq_id, None)
        if node is not None:
            self._touch(node)  # a finished conversation is the likeliest to come back
        for block in reversed(seq.block_table):
            self._unref(block)
        seq.block_table = []
        seq.num_cached_blocks = 0

    def fork(self, parent: Sequence, child: Sequence) -> None:
        for block in parent.block_table:
            self._ref(block)
        child.block_table = list(parent.block_table)
        child.num_computed_tokens = parent.num_computed_tokens
        child.num_cached_blocks = parent.num_cached_blocks
        self.cursor[child.seq_id] = self.cursor.get(parent.seq_id, self.root)

    def take_copies(self) -> list[tuple[int, int]]:
        copies, self.copies = self.copies, []
        return copies

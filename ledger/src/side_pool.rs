//! Blocks kept off the canonical chain: forks that do not beat it (yet) and blocks whose parent
//! has not arrived. Bounded in count and in bytes; when full, the block farthest from the head's
//! height goes first (stale forks below, speculative blocks above).

use std::collections::HashMap;

use crate::{Block, Hash, Transaction};

/// Most blocks kept off the canonical chain.
pub const MAX_SIDE_BLOCKS: usize = 512;
/// Most bytes of blocks kept off the canonical chain (a full pool of the largest blocks would
/// otherwise hold gigabytes).
pub const MAX_SIDE_BYTES: usize = 64 << 20;
/// What a block's header and framing are counted as, on top of its transactions.
const HEADER_ALLOWANCE: usize = 512;

/// The blocks, each with the bytes it is counted as.
#[derive(Debug)]
pub(crate) struct SidePool {
    blocks: HashMap<Hash, (Block, usize)>,
    bytes: usize,
    max_blocks: usize,
    max_bytes: usize,
}

impl Default for SidePool {
    fn default() -> Self {
        SidePool::with_bounds(MAX_SIDE_BLOCKS, MAX_SIDE_BYTES)
    }
}

/// The bytes `block` is counted as.
fn footprint(block: &Block) -> usize {
    HEADER_ALLOWANCE + block.transactions.iter().map(Transaction::encoded_len).sum::<usize>()
}

impl SidePool {
    fn with_bounds(max_blocks: usize, max_bytes: usize) -> Self {
        SidePool { blocks: HashMap::new(), bytes: 0, max_blocks, max_bytes }
    }

    pub(crate) fn get(&self, hash: &Hash) -> Option<&Block> {
        self.blocks.get(hash).map(|(block, _)| block)
    }

    pub(crate) fn contains(&self, hash: &Hash) -> bool {
        self.blocks.contains_key(hash)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Hash, &Block)> {
        self.blocks.iter().map(|(hash, (block, _))| (hash, block))
    }

    /// Bytes held.
    #[cfg(all(test, feature = "testkit"))]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(all(test, feature = "testkit"))]
    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }

    pub(crate) fn remove(&mut self, hash: &Hash) -> Option<Block> {
        let (block, size) = self.blocks.remove(hash)?;
        self.bytes -= size;
        Some(block)
    }

    /// Keeps `block`, first making room by dropping the blocks farthest from `head_height`; if
    /// `block` is itself the farthest, or larger than the whole pool, it is not kept.
    pub(crate) fn insert(&mut self, block: Block, head_height: u64) {
        let size = footprint(&block);
        if size > self.max_bytes {
            return;
        }
        if let Some((_, held)) = self.blocks.remove(&block.hash()) {
            self.bytes -= held;
        }
        let distance = |block: &Block, hash: Hash| (block.header().height.abs_diff(head_height), hash);
        let newcomer = distance(&block, block.hash());
        while self.blocks.len() >= self.max_blocks || self.bytes + size > self.max_bytes {
            let farthest = self
                .blocks
                .iter()
                .map(|(hash, (b, _))| distance(b, *hash))
                .max()
                .filter(|far| *far > newcomer);
            match farthest {
                Some((_, farthest)) => {
                    self.remove(&farthest);
                }
                // The newcomer is the farthest: it is the one not kept.
                None => return,
            }
        }
        self.blocks.insert(block.hash(), (block, size));
        self.bytes += size;
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::*;
    use crate::testkit::ChainGenerator;

    /// The attack: large junk blocks fill the pool until it holds gigabytes (512 blocks of
    /// 4 MiB). The pool counts bytes and drops the blocks farthest from the head to stay under
    /// its bound, whatever their number.
    #[test]
    fn large_side_blocks_cannot_hold_more_than_the_byte_bound() {
        let mut generator = ChainGenerator::new(64, 3);
        let blocks: Vec<Block> = (0..4).map(|_| generator.next_block(100)).collect();
        let each = footprint(&blocks[0]);
        let mut pool = SidePool::with_bounds(MAX_SIDE_BLOCKS, each * 5 / 2);
        for block in &blocks {
            pool.insert(block.clone(), 0);
            assert!(pool.bytes() <= each * 5 / 2, "{} bytes held", pool.bytes());
        }
        // Heights 1 and 2 are nearest the head at 0: they stay.
        assert_eq!(pool.len(), 2);
        assert!(pool.contains(&blocks[0].hash()) && pool.contains(&blocks[1].hash()));
        // Keeping a block again does not count it twice; removing it gives its bytes back.
        let held = pool.bytes();
        pool.insert(blocks[1].clone(), 0);
        assert_eq!(pool.bytes(), held);
        pool.remove(&blocks[1].hash());
        assert_eq!(pool.bytes(), held - footprint(&blocks[1]));
    }

    #[test]
    fn the_count_bound_holds_with_small_blocks() {
        let mut generator = ChainGenerator::new(4, 4);
        let mut pool = SidePool::with_bounds(3, MAX_SIDE_BYTES);
        for _ in 0..6 {
            pool.insert(generator.next_block(0), 0);
        }
        assert_eq!(pool.len(), 3);
    }
}

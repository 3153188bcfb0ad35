//! Storage buffers pooled by size class: a step's intermediates return here when their tensors
//! drop, and the next step takes them back, so a steady training loop allocates nothing.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use crate::error::{Error, Result};

pub(crate) struct Pool {
    device: wgpu::Device,
    max_buffer: u64,
    free: RefCell<HashMap<u64, Vec<wgpu::Buffer>>>,
    pub(crate) created: Cell<u64>,
    pub(crate) created_bytes: Cell<u64>,
    pub(crate) live: Cell<u64>,
    pub(crate) live_bytes: Cell<u64>,
}

/// A pooled storage buffer holding `len` bytes of one tensor (the buffer may be larger).
pub struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    class: u64,
    pub(crate) len: u64,
    pool: Weak<Pool>,
}

impl GpuBuffer {
    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer present until drop")
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let (Some(pool), Some(buffer)) = (self.pool.upgrade(), self.buffer.take()) {
            pool.live.set(pool.live.get() - 1);
            pool.live_bytes.set(pool.live_bytes.get() - self.class);
            pool.free
                .borrow_mut()
                .entry(self.class)
                .or_default()
                .push(buffer);
        }
    }
}

/// Size classes: 256 bytes, then 2^k and 1.5·2^k, so at most a third of a buffer is slack.
/// Every buffer holds its tensor's bytes rounded up to this, and is bound that long, so kernels
/// may read and write whole `vec4<f32>`s past the last element (into the buffer's own padding).
pub(crate) const BINDING_ALIGN: u64 = 16;

fn size_class(bytes: u64) -> u64 {
    if bytes <= 256 {
        return 256;
    }
    let p = bytes.next_power_of_two();
    if bytes <= p / 4 * 3 { p / 4 * 3 } else { p }
}

impl Pool {
    pub(crate) fn new(device: wgpu::Device, max_buffer: u64) -> Pool {
        Pool {
            device,
            max_buffer,
            free: RefCell::new(HashMap::new()),
            created: Cell::new(0),
            created_bytes: Cell::new(0),
            live: Cell::new(0),
            live_bytes: Cell::new(0),
        }
    }

    /// A buffer of at least `bytes` (non-zero): a pooled one of the same class, or a new one.
    pub(crate) fn take(self: &Rc<Self>, bytes: u64, op: &str) -> Result<GpuBuffer> {
        debug_assert!(bytes > 0);
        let mut class = size_class(bytes);
        if class > self.max_buffer {
            class = bytes.next_multiple_of(BINDING_ALIGN);
        }
        let reused = self.free.borrow_mut().get_mut(&class).and_then(Vec::pop);
        let buffer = match reused {
            Some(b) => b,
            None => self.create(class, op)?,
        };
        self.live.set(self.live.get() + 1);
        self.live_bytes.set(self.live_bytes.get() + class);
        Ok(GpuBuffer {
            buffer: Some(buffer),
            class,
            len: bytes,
            pool: Rc::downgrade(self),
        })
    }

    fn create(&self, size: u64, op: &str) -> Result<wgpu::Buffer> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let invalid = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgrad tensor"),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let invalid = pollster::block_on(invalid.pop());
        let oom = pollster::block_on(oom.pop());
        if let Some(e) = oom.or(invalid) {
            // Give pooled memory back to the driver and let the caller retry or report.
            self.free.borrow_mut().clear();
            return Err(Error::OutOfMemory {
                op: op.to_string(),
                message: format!("allocating {size} bytes: {e}"),
            });
        }
        self.created.set(self.created.get() + 1);
        self.created_bytes.set(self.created_bytes.get() + size);
        Ok(buffer)
    }

    /// Buffers waiting in the pool.
    pub(crate) fn pooled(&self) -> u64 {
        self.free.borrow().values().map(|v| v.len() as u64).sum()
    }
}

/// Refuse a tensor of `bytes` that one storage binding, one buffer or a `u32` element index
/// cannot hold, naming the limit; checked on the host before anything is allocated.
pub(crate) fn check_tensor_bytes(op: &str, bytes: u64, limits: &wgpu::Limits) -> Result<()> {
    let too_large = |what, limit, limit_name| Error::TooLarge {
        op: op.to_string(),
        what,
        needed: bytes,
        limit,
        limit_name,
    };
    if bytes / 4 > u32::MAX as u64 {
        return Err(too_large(
            "u32-indexed tensor",
            u32::MAX as u64 * 4,
            "u32 element index",
        ));
    }
    // Buffers are bound rounded up to whole vec4s.
    let bytes = bytes.next_multiple_of(BINDING_ALIGN);
    if bytes > limits.max_storage_buffer_binding_size {
        return Err(too_large(
            "storage binding",
            limits.max_storage_buffer_binding_size,
            "max_storage_buffer_binding_size",
        ));
    }
    if bytes > limits.max_buffer_size {
        return Err(too_large(
            "buffer",
            limits.max_buffer_size,
            "max_buffer_size",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_waste_at_most_a_third() {
        assert_eq!(size_class(1), 256);
        assert_eq!(size_class(257), 384);
        assert_eq!(size_class(384), 384);
        assert_eq!(size_class(385), 512);
        for b in [300u64, 1000, 4097, 1 << 20, (1 << 20) + 1, 3 << 19] {
            let c = size_class(b);
            assert!(c >= b && c * 2 <= b * 3 + 512, "{b} -> {c}");
        }
    }
}

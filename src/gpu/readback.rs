//! Waiting for the GPU and reading its buffers: every wait has a timeout (`WGRAD_TIMEOUT_SECS`),
//! and every readback (a tensor, anomaly flags, profiling timestamps) goes through one function,
//! [`Gpu::map_read`]: map, wait, copy out, unmap.

use super::Gpu;
use crate::buffer::GpuBuffer;
use crate::error::{Error, Result};

/// Submissions allowed in flight before a flush waits for the oldest (bounds queued work).
pub(super) const MAX_IN_FLIGHT: usize = 3;

impl Gpu {
    /// Wait for submission `index` (or for everything), at most the device's timeout.
    pub(super) fn wait(&self, index: Option<wgpu::SubmissionIndex>) -> Result<()> {
        match self.device.poll(wgpu::PollType::Wait {
            submission_index: index,
            timeout: Some(self.timeout),
        }) {
            Ok(_) => {
                self.pipelines.device_waited();
                Ok(())
            }
            Err(wgpu::PollError::Timeout) => Err(Error::Readback(format!(
                "the GPU did not finish within {:?} (set WGRAD_TIMEOUT_SECS to wait longer)",
                self.timeout
            ))),
            Err(e) => {
                self.check_health()?;
                Err(Error::Readback(e.to_string()))
            }
        }
    }

    /// Wait for every submission so far.
    pub(crate) fn wait_idle(&self) -> Result<()> {
        self.wait(None)?;
        self.in_flight.borrow_mut().clear();
        Ok(())
    }

    /// Keep at most [`MAX_IN_FLIGHT`] submissions queued, so a loop that never reads cannot run
    /// ahead of the GPU without bound.
    pub(super) fn throttle(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        let mut q = self.in_flight.borrow_mut();
        q.push_back(index);
        if q.len() > MAX_IN_FLIGHT {
            let oldest = q.pop_front().expect("non-empty");
            self.wait(Some(oldest))?;
        }
        Ok(())
    }

    /// The bytes of `staging` (a `MAP_READ` buffer filled by the work up to `index`, or by
    /// everything submitted if `None`): map it, wait for the GPU, copy the bytes out, unmap.
    /// `what` names it in errors.
    pub(super) fn map_read(
        &self,
        staging: &wgpu::Buffer,
        index: Option<wgpu::SubmissionIndex>,
        what: &str,
    ) -> Result<Vec<u8>> {
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait(index)?;
        // Submissions finish in order: nothing submitted before is still in flight.
        self.in_flight.borrow_mut().clear();
        match rx.try_recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Readback(format!("{what}: {e}"))),
            Err(_) => {
                self.check_health()?;
                return Err(Error::Readback(format!(
                    "the {what} was not mapped after the GPU finished"
                )));
            }
        }
        let bytes = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Readback(format!("{what}: {e}")))?
            .to_vec();
        staging.unmap();
        Ok(bytes)
    }

    /// The first `numel` values of a buffer, on the host.
    pub(crate) fn read(&self, buf: &GpuBuffer, numel: usize) -> Result<Vec<f32>> {
        self.check_health()?;
        self.read_unchecked(buf, numel).map_err(|e| self.lost_or(e))
    }

    fn read_unchecked(&self, buf: &GpuBuffer, numel: usize) -> Result<Vec<f32>> {
        let bytes = numel as u64 * 4;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgrad readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        encoder.copy_buffer_to_buffer(buf.raw(), 0, &staging, 0, bytes);
        let index = self.queue.submit([encoder.finish()]);
        let raw = self.map_read(&staging, Some(index), "buffer")?;
        self.readbacks.set(self.readbacks.get() + 1);
        Ok(bytemuck::cast_slice::<u8, f32>(&raw).to_vec())
    }
}

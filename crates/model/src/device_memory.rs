//! How much accelerator memory a process uses, read from the CUDA driver.
//!
//! candle's CUDA backend allocates every tensor from the device's
//! stream-ordered memory pool (`cuMemAllocAsync`). Freed tensors go back to
//! the pool, which keeps the memory reserved, so `nvidia-smi` shows the
//! pool's size and not what tensors hold. The pool's own counters tell the
//! two apart: [`DeviceMemory::used`] is what live allocations hold,
//! [`DeviceMemory::reserved`] what the pool holds from the device. A `used`
//! that grows from step to step is a leak; a `reserved` that grows while
//! `used` does not is the pool failing to reuse its memory.
//!
//! On the CPU (or a build without `--features cuda`) there is nothing to
//! read: [`device_memory`] returns `None`.

use candle_core::Device;

/// Bytes of accelerator memory, from the CUDA driver and the device's
/// current memory pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceMemory {
    /// Held by live allocations now (the pool's `USED_MEM_CURRENT`).
    pub used: u64,
    /// Highest `used` since the last [`reset_peaks`] (`USED_MEM_HIGH`).
    pub used_peak: u64,
    /// Held by the pool from the device now (`RESERVED_MEM_CURRENT`).
    pub reserved: u64,
    /// Free on the device, for every process (`cuMemGetInfo`).
    pub free: u64,
    /// The device's memory (`cuMemGetInfo`).
    pub total: u64,
}

/// Bytes to gigabytes (10^9), for metrics.
pub fn gigabytes(bytes: u64) -> f64 {
    bytes as f64 / 1e9
}

/// The memory of `device` after the work queued on it has finished, or
/// `None` on the CPU, in builds without CUDA, and where the driver does not
/// answer (the error is not worth stopping a run for: this is a metric).
///
/// ```
/// use candle_core::Device;
/// assert_eq!(toolgym_model::device_memory::device_memory(&Device::Cpu), None);
/// ```
pub fn device_memory(device: &Device) -> Option<DeviceMemory> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        return cuda::read(d, false).ok();
    }
    let _ = device;
    None
}

/// Starts a new peak: [`DeviceMemory::used_peak`] counts from here. Does
/// nothing where [`device_memory`] has nothing to read.
pub fn reset_peaks(device: &Device) {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        let _ = cuda::read(d, true);
    }
    let _ = device;
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::DeviceMemory;
    use candle_core::cuda::cudarc::driver::{result, sys, DriverError};
    use candle_core::CudaDevice;

    /// Reads the counters after synchronising the device's stream (frees
    /// are stream-ordered: before the sync, the pool may not have seen
    /// them); with `reset`, sets the used high-water mark to zero first.
    pub(super) fn read(d: &CudaDevice, reset: bool) -> Result<DeviceMemory, DriverError> {
        let stream = d.cuda_stream();
        stream.synchronize()?;
        let ctx = stream.context();
        ctx.bind_to_thread()?;
        let (free, total) = ctx.mem_get_info()?;
        // SAFETY: the device handle comes from a live context, and each
        // pool attribute read or written here is a `cuuint64_t`, which the
        // pointer given points to.
        unsafe {
            let pool = result::device::get_mem_pool(ctx.cu_device())?;
            let attr = |a: sys::CUmemPool_attribute| -> Result<u64, DriverError> {
                let mut v: u64 = 0;
                result::mem_pool::get_attribute(pool, a, (&mut v as *mut u64).cast())?;
                Ok(v)
            };
            if reset {
                let mut zero: u64 = 0;
                result::mem_pool::set_attribute(
                    pool,
                    sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
                    (&mut zero as *mut u64).cast(),
                )?;
            }
            Ok(DeviceMemory {
                used: attr(sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_CURRENT)?,
                used_peak: attr(sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH)?,
                reserved: attr(sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT)?,
                free: free as u64,
                total: total as u64,
            })
        }
    }
}

//! The camera sensor: the portable driver is [`unveil_shared::sensor`] (`no_std`, for a
//! camera MCU as much as for the board); this module adds what only a Linux board has.

pub use unveil_shared::sensor::*;

/// Opening the real sensor on a Linux board (`linux` feature): `/dev/i2c-N` for the bus and
/// a GPIO character device line for the trigger/LED.
#[cfg(feature = "linux")]
pub mod linux {
    use std::path::Path;

    use linux_embedded_hal::gpio_cdev::{self, Chip, LineRequestFlags};
    use linux_embedded_hal::i2cdev::linux::LinuxI2CError;
    pub use linux_embedded_hal::{CdevPin, I2cdev};

    use unveil_shared::sensor::{Sensor, SensorConfig};

    pub type LinuxSensor = Sensor<I2cdev, CdevPin>;

    /// The bus or GPIO line could not be opened (missing device node, permissions, busy).
    #[derive(Debug, thiserror::Error)]
    pub enum OpenError {
        #[error("opening I2C bus {path}")]
        I2c {
            path: String,
            #[source]
            source: LinuxI2CError,
        },
        #[error("requesting GPIO line {line} on {chip}")]
        Gpio {
            chip: String,
            line: u32,
            #[source]
            source: gpio_cdev::Error,
        },
    }

    /// Open the sensor on `i2c_bus` (e.g. `/dev/i2c-1`) with `line` of `gpio_chip`
    /// (e.g. `/dev/gpiochip0`) as its trigger/LED output, initially low. Talks to nothing
    /// yet: call [`Sensor::init`] next.
    pub fn open(
        i2c_bus: impl AsRef<Path>,
        gpio_chip: impl AsRef<Path>,
        line: u32,
        config: SensorConfig,
    ) -> Result<LinuxSensor, OpenError> {
        let (i2c_bus, gpio_chip) = (i2c_bus.as_ref(), gpio_chip.as_ref());
        let i2c = I2cdev::new(i2c_bus).map_err(|source| OpenError::I2c {
            path: i2c_bus.display().to_string(),
            source,
        })?;
        let gpio_error = |source| OpenError::Gpio {
            chip: gpio_chip.display().to_string(),
            line,
            source,
        };
        let handle = Chip::new(gpio_chip)
            .and_then(|mut chip| chip.get_line(line))
            .and_then(|l| l.request(LineRequestFlags::OUTPUT, 0, "unveil-trigger"))
            .map_err(gpio_error)?;
        let pin = CdevPin::new(handle).map_err(gpio_error)?;
        Ok(Sensor::new(i2c, pin, config))
    }
}

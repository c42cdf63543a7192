//! The floating-point types the reference model runs in: f32 and f64.

/// A float type the model can run in.
pub trait Real:
    num_traits::Float
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + std::iter::Sum
    + std::fmt::Debug
    + std::fmt::Display
    + Send
    + Sync
    + 'static
{
    /// The value nearest to `x`.
    fn of(x: f64) -> Self;
    /// The value of a stored float32 weight.
    fn from_f32(x: f32) -> Self;
    /// As float64, exactly.
    fn as_f64(self) -> f64;
}

impl Real for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn from_f32(x: f32) -> Self {
        x
    }
    fn as_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn from_f32(x: f32) -> Self {
        f64::from(x)
    }
    fn as_f64(self) -> f64 {
        self
    }
}

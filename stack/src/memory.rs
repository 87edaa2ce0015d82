//! The stack's memory budget (`Config::max_memory`): every connection's
//! buffers are counted, and the total decides how short of memory the stack
//! is. Under pressure buffers stop growing and shrink back as they drain; past
//! the budget, nothing new is taken on (connections, joins, out-of-order data)
//! until memory is given back. Bytes already offered in a window are always
//! accepted: a budget can be overrun by what was promised, never by more.

/// How short of memory the stack is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Pressure {
    #[default]
    None,
    /// Past half the budget: buffers do not grow, and shrink when they drain.
    High,
    /// At the budget: no new connections, subflows or out-of-order data.
    Exhausted,
}

impl Pressure {
    /// The level for `used` bytes of a `budget`; `current` gives hysteresis,
    /// so that a stack at the edge does not flip on every packet (pressure
    /// ends below a quarter of the budget, exhaustion below 7/8): buffers
    /// that grow again after pressure ends have room to.
    pub fn for_usage(used: usize, budget: usize, current: Pressure) -> Pressure {
        let at =
            |num: usize, den: usize| used as u128 * den as u128 >= budget as u128 * num as u128;
        match current {
            _ if at(1, 1) => Pressure::Exhausted,
            Pressure::Exhausted if at(7, 8) => Pressure::Exhausted,
            _ if at(1, 2) => Pressure::High,
            Pressure::Exhausted | Pressure::High if at(1, 4) => Pressure::High,
            _ => Pressure::None,
        }
    }

    pub fn may_grow(self) -> bool {
        self == Pressure::None
    }
}

#[cfg(test)]
mod tests {
    use super::Pressure::{self, *};

    #[test]
    fn levels_with_hysteresis() {
        let p = |used, cur| Pressure::for_usage(used, 800, cur);
        assert_eq!(p(0, None), None);
        assert_eq!(p(399, None), None);
        assert_eq!(p(400, None), High);
        assert_eq!(p(350, High), High);
        assert_eq!(p(200, High), High);
        assert_eq!(p(199, High), None);
        assert_eq!(p(800, High), Exhausted);
        assert_eq!(p(700, Exhausted), Exhausted);
        assert_eq!(p(699, Exhausted), High);
        assert_eq!(p(199, Exhausted), None);
        assert_eq!(Pressure::for_usage(1, 0, None), Exhausted);
    }
}

//! Code shared by the Intel 10 GbE drivers (ixgbe physical functions and, later, ixgbevf
//! virtual functions).
//!
//! * [`ring`] — the advanced receive and transmit descriptor rings (82599 datasheet 7.1.6
//!   and 7.2.3.2.4). Both the PF and the VF use the same descriptor formats; only the
//!   register offsets of a queue differ, and the rings take those as parameters.

pub(crate) mod ring;

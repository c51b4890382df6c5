//! Whether a device may report a position (PROTOCOL.md section 4, device
//! position): never past the workspace head, never back below the position
//! recorded for it. Reporting the recorded position again changes nothing.

use crate::ServerVersion;

/// Why a reported position is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PositionRefusal {
    /// Past the newest committed version.
    #[error("cursor {reported} is past the workspace head {head}")]
    Ahead {
        /// What the device reported.
        reported: ServerVersion,
        /// The workspace head.
        head: ServerVersion,
    },
    /// Below the position already recorded for the device.
    #[error("cursor {reported} is below the device's recorded position {recorded}")]
    Regression {
        /// What the device reported.
        reported: ServerVersion,
        /// Its recorded position.
        recorded: ServerVersion,
    },
}

/// Checks a device's reported position against the head and its recorded
/// position (`None`: none recorded yet).
pub fn check_position(
    reported: ServerVersion,
    head: ServerVersion,
    recorded: Option<ServerVersion>,
) -> Result<(), PositionRefusal> {
    if reported > head {
        return Err(PositionRefusal::Ahead { reported, head });
    }
    match recorded {
        Some(recorded) if reported < recorded => {
            Err(PositionRefusal::Regression { reported, recorded })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_past_the_head_is_ahead() {
        assert_eq!(
            check_position(6, 5, None),
            Err(PositionRefusal::Ahead {
                reported: 6,
                head: 5
            })
        );
        assert_eq!(check_position(5, 5, None), Ok(()));
    }

    #[test]
    fn a_position_below_the_recorded_one_is_a_regression_and_equal_is_fine() {
        assert_eq!(
            check_position(3, 5, Some(4)),
            Err(PositionRefusal::Regression {
                reported: 3,
                recorded: 4
            })
        );
        assert_eq!(check_position(4, 5, Some(4)), Ok(()));
        assert_eq!(check_position(5, 5, Some(4)), Ok(()));
    }
}

//! Positions a device reports on purpose (PROTOCOL.md section 4, device
//! position).

use super::{alice, put, workspace, T0};
use std::sync::Arc;
use sync_core::position::PositionRefusal;
use sync_core::{Role, WorkspaceId};
use sync_server::store::{Access, DevicePosition, Store, StoreError};

fn at(ws: &WorkspaceId, cursor: u64) -> DevicePosition {
    DevicePosition {
        workspace_id: ws.clone(),
        device_id: "0123456789abcdef".into(),
        cursor,
        seen_at_ms: T0,
    }
}

/// A reported position is refused past the head and below the recorded one;
/// the same one again is fine, and a viewer may report.
pub async fn reported_positions_never_pass_the_head_or_go_back(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    let ops = (0..3).map(|i| put(&format!("m{i}"), 1, T0)).collect();
    store.push(&ws, &alice(), ops, T0).await.unwrap();
    let viewer = Access::Member {
        user_id: "victor".into(),
    };
    store
        .set_member(&ws, &alice(), "victor", Role::Viewer)
        .await
        .unwrap();
    let ahead = store.report_position(&viewer, at(&ws, 4)).await;
    assert!(matches!(
        ahead,
        Err(StoreError::Position(PositionRefusal::Ahead { head: 3, .. }))
    ));
    store.report_position(&viewer, at(&ws, 2)).await.unwrap();
    store.report_position(&viewer, at(&ws, 2)).await.unwrap();
    let back = store.report_position(&alice(), at(&ws, 1)).await;
    assert!(matches!(
        back,
        Err(StoreError::Position(PositionRefusal::Regression {
            recorded: 2,
            ..
        }))
    ));
    store.report_position(&alice(), at(&ws, 3)).await.unwrap();
    let stranger = Access::Member {
        user_id: "mallory".into(),
    };
    let refused = store.report_position(&stranger, at(&ws, 3)).await;
    assert!(matches!(refused, Err(StoreError::Forbidden(_))));
    let unknown = store
        .report_position(&alice(), at(&WorkspaceId::generate(), 0))
        .await;
    assert!(matches!(unknown, Err(StoreError::UnknownWorkspace)));
}

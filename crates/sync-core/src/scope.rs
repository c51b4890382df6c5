//! Project scope (PROTOCOL.md section 1): threads belong to the project named
//! by their `project_id`; messages belong to their thread's project; every
//! other table is workspace-wide and always in scope.

use serde_json::{Map, Value};

/// How a table relates to projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableScope {
    /// Always in scope (projects, posts, kv, file_meta, notifications, ...).
    Workspace = 0,
    /// In the project named by the row's `project_id` (threads).
    OwnProject = 1,
    /// In the project of the thread named by the row's `thread_id` (messages).
    ThreadProject = 2,
}

/// The scope rule of a table.
pub fn table_scope(table_name: &str) -> TableScope {
    match table_name {
        "threads" => TableScope::OwnProject,
        "messages" => TableScope::ThreadProject,
        _ => TableScope::Workspace,
    }
}

/// A thread row's project, if any.
pub fn project_id_of(row: &Map<String, Value>) -> Option<&str> {
    row.get("project_id").and_then(Value::as_str)
}

/// A message row's thread, if any.
pub fn thread_id_of(row: &Map<String, Value>) -> Option<&str> {
    row.get("thread_id").and_then(Value::as_str)
}

/// The project columns of a change-log entry, resolved at commit time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedScope {
    /// The entry belongs to a project scope (threads, messages).
    pub scoped: bool,
    /// The record's project after the write.
    pub project_id: Option<String>,
    /// The record's project before the write, when it changed.
    pub prev_project_id: Option<String>,
    /// The record moved between projects: clients syncing one project rescan.
    pub scope_change: bool,
}

/// Resolves the scope of a write. `previous` is `None` for a new record, else
/// the project the record had at its previous commit.
pub fn logged_scope(
    scope: TableScope,
    project_id: Option<&str>,
    previous: Option<Option<&str>>,
) -> LoggedScope {
    if scope == TableScope::Workspace {
        return LoggedScope {
            scoped: false,
            project_id: None,
            prev_project_id: None,
            scope_change: false,
        };
    }
    let moved = matches!(previous, Some(prev) if prev != project_id);
    LoggedScope {
        scoped: true,
        project_id: project_id.map(str::to_owned),
        prev_project_id: if moved {
            previous.flatten().map(str::to_owned)
        } else {
            None
        },
        scope_change: moved,
    }
}

//! The `harbor` registry type. PLACEHOLDER: the registry-client work replaces `build`.

use crate::replication::adapter::{Adapter, AdapterType, Endpoint};
use crate::replication::content::{ContentError, ContentResult};

pub const TYPE: AdapterType = AdapterType {
    name: "harbor",
    description: "",
    filters: &["name", "tag", "label", "resource"],
    triggers: &["manual", "scheduled", "event_based"],
    build,
};

fn build(_endpoint: &Endpoint) -> ContentResult<Box<dyn Adapter>> {
    Err(ContentError::Other("the harbor adapter is not built yet".into()))
}

//! Topic creation through the Kafka admin API, for set-up and tests. (The
//! in-process mock cluster does not answer CreateTopics; the demo creates
//! its topics through the mock cluster's own call.)
//!
//! Nothing else of the admin API is used: gavel never deletes or alters
//! topics.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::error::{KafkaError, Result};
use crate::settings::KafkaSettings;

/// Creates each topic with `partitions` partitions; a topic that already
/// exists is not an error.
pub async fn create_topics(settings: &KafkaSettings, topics: &[&str], partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = settings.admin_config().create()?;
    let new_topics: Vec<NewTopic<'_>> =
        topics.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1))).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin.create_topics(&new_topics, &options).await?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(KafkaError::CreateTopic { topic, source: code });
            }
        }
    }
    Ok(())
}

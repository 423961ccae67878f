//! The extractor's initial checkpoint, written by `deploy` (`If-None-Match: *`, so an existing one is
//! never touched). S3 answers a GetObject of a missing key with 403, not 404, when the caller may
//! not list the bucket, and the function's role may list only under a prefix condition a GetObject
//! does not carry: so no run may ever have to read a missing checkpoint.
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html> ("Permissions").

use futures::future::BoxFuture;

use super::failure;
use super::s3::Bucket;
use crate::extract::checkpoint;
use crate::extract::sink::Sink;
use crate::plan::{Address, Change, ErrorKind, Fields, Inputs, Observed, Outputs, Resource, ResourceError, field_map};

/// `{prefix}/_state/extract.json` in the data bucket.
pub struct InitialCheckpoint {
    /// The S3 client.
    pub s3: aws_sdk_s3::Client,
    /// The data bucket.
    pub bucket: String,
    /// The environment's key prefix.
    pub prefix: String,
    /// `extract.query`, recorded so the first run does not see a changed query.
    pub query: String,
}

impl InitialCheckpoint {
    /// `aws_s3_object.checkpoint`.
    pub fn address() -> Address {
        Address::new("aws_s3_object", "checkpoint")
    }

    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, checkpoint::key(&self.prefix))
    }
}

impl Resource for InitialCheckpoint {
    fn address(&self) -> Address {
        Self::address()
    }

    fn depends_on(&self) -> Vec<Address> {
        vec![Bucket::address()]
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(async move {
            let head = self.s3.head_object().bucket(&self.bucket).key(checkpoint::key(&self.prefix)).send().await;
            match head {
                Ok(_) => Ok(Some(Observed { fields: self.desired(&Inputs::default()), outputs: Outputs::new() })),
                // 404 for the key, or for the bucket (a first deploy): to be created.
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
                Err(e) => Err(failure(&Self::address(), "read", &e)),
            }
        })
    }

    fn desired(&self, _inputs: &Inputs) -> Fields {
        field_map([("object", self.location())])
    }

    fn apply<'a>(
        &'a self,
        _change: &'a Change,
        _observed: Option<&'a Observed>,
        _inputs: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            let sink = Sink::S3 { client: self.s3.clone(), bucket: self.bucket.clone() };
            let seeded = checkpoint::seed(&sink, &self.prefix, &self.query).await;
            seeded.map_err(|e| ResourceError {
                address: Self::address(),
                op: "create".into(),
                kind: if e.is_connect() { ErrorKind::Connect } else { ErrorKind::Other },
                message: e.to_string(),
            })?;
            Ok(Outputs::new())
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move {
            let key = checkpoint::key(&self.prefix);
            let deleted = self.s3.delete_object().bucket(&self.bucket).key(key).send().await;
            deleted.map(drop).map_err(|e| failure(&Self::address(), "delete", &e))
        })
    }
}

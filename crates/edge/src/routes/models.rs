//! `GET /v1/models`: the models the calling key may use.

use std::sync::Arc;

use axum::{Json, extract::State, http::HeaderMap};
use serde::Serialize;
use switchyard_common::ErrorClass;

use crate::{EdgeState, error::ApiError};

#[derive(Serialize)]
pub struct ModelList {
    object: &'static str,
    data: Vec<ModelObject>,
}

#[derive(Serialize)]
struct ModelObject {
    id: String,
    object: &'static str,
    created: u64,
    owned_by: String,
}

/// Lists models in OpenAI's list shape.
pub async fn list(
    State(state): State<Arc<EdgeState>>,
    headers: HeaderMap,
) -> Result<Json<ModelList>, ApiError> {
    let index = state.index.load().ok_or_else(|| {
        ApiError::new(
            ErrorClass::ServiceUnavailable,
            "The gateway is starting; try again shortly.",
        )
    })?;
    let key = index.authenticate(&headers)?;
    let data = index
        .models
        .iter()
        .filter(|model| key.may_use(&model.name))
        .map(|model| ModelObject {
            id: model.name.clone(),
            object: "model",
            created: 0,
            owned_by: model.owned_by.clone(),
        })
        .collect();
    Ok(Json(ModelList {
        object: "list",
        data,
    }))
}

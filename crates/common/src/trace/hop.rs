//! A hop's span: a `tracing` span when its trace is sampled, and when it
//! is not, only the span's place in the trace (its ids, its parent, when it
//! started, what is known of it), which becomes an exported span if it
//! fails. An unsampled request thus costs a few ids and no span machinery,
//! and its failures are still visible.

use std::{
    borrow::Cow,
    fmt,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use opentelemetry::{
    Context, KeyValue, Value,
    trace::{
        SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    },
};
use opentelemetry_sdk::trace::{IdGenerator, SpanData, SpanEvents, SpanLinks};
use switchyard_proto::v1::RequestContext;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{
    TARGET, parse,
    sampling::{Decider, Sampling},
    traceparent,
};

/// What a span is called and what it carries from its start.
#[derive(Debug)]
pub struct Opening {
    /// The span's name (`route chat`).
    pub name: Cow<'static, str>,
    /// Server, client or internal.
    pub kind: SpanKind,
    /// Attributes known when the span opens.
    pub attributes: Vec<KeyValue>,
}

impl Opening {
    /// A span called `name` of `kind`, with no attributes yet.
    pub fn new(name: impl Into<Cow<'static, str>>, kind: SpanKind) -> Self {
        Self {
            name: name.into(),
            kind,
            attributes: Vec::new(),
        }
    }

    /// Adds an attribute.
    #[must_use]
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.attributes.push(KeyValue::new(key, value));
        self
    }
}

/// A hop's span. Cloning it names the same span.
#[derive(Debug, Clone)]
pub struct HopSpan {
    /// The recorded span of a sampled trace; disabled otherwise.
    span: Span,
    /// The place of an unsampled trace's span.
    pending: Option<Arc<Pending>>,
}

/// Builds a span's name and opening attributes: at once for a sampled
/// span, only on failure for an unsampled one.
type Opener = Box<dyn FnOnce() -> Opening + Send>;

/// An unsampled span: enough to export it if it fails.
struct Pending {
    decider: Arc<Decider>,
    context: SpanContext,
    parent: Option<SpanContext>,
    start: SystemTime,
    state: Mutex<PendingState>,
}

/// What an unsampled span will be exported with, if it fails.
struct PendingState {
    /// Taken by the export, so a span is exported once.
    opener: Option<Opener>,
    name: Option<Cow<'static, str>>,
    attributes: Vec<KeyValue>,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("context", &self.context)
            .field("parent", &self.parent)
            .finish_non_exhaustive()
    }
}

impl HopSpan {
    /// No span: tracing is off.
    pub fn none() -> Self {
        Self {
            span: Span::none(),
            pending: None,
        }
    }

    /// Opens the span of a hop called by the span a W3C `traceparent` (with
    /// its `tracestate`) names; a malformed or empty one starts a trace.
    /// `opening` runs when the span is recorded: at once when its trace is
    /// sampled, when it fails otherwise, never when tracing is off.
    pub fn follow(
        traceparent: &str,
        tracestate: &str,
        opening: impl FnOnce() -> Opening + Send + 'static,
    ) -> Self {
        // Not `tracing::enabled!`: with per-layer filters, an enabled-check
        // not followed by an event leaves filter state that drops the
        // thread's next log line.
        let Some(decider) = Sampling::current() else {
            return Self::none();
        };
        let parent = parse(traceparent, tracestate);
        let trace_id = parent
            .as_ref()
            .map_or_else(|| decider.new_trace_id(), SpanContext::trace_id);
        let sampled =
            parent.as_ref().is_some_and(SpanContext::is_sampled) || decider.ratio.samples(trace_id);
        if sampled {
            let span = open(opening(), None);
            if let Some(parent) = parent {
                // Fails only when the span is disabled.
                let _kept = span.set_parent(Context::new().with_remote_span_context(parent));
            }
            Self {
                span,
                pending: None,
            }
        } else {
            let state = parent
                .as_ref()
                .map(|parent| parent.trace_state().clone())
                .unwrap_or_default();
            Self::pending(decider, trace_id, state, parent, Box::new(opening))
        }
    }

    /// Opens the span of a hop called in-process with `context`.
    pub fn follow_context(
        context: &RequestContext,
        opening: impl FnOnce() -> Opening + Send + 'static,
    ) -> Self {
        Self::follow(&context.traceparent, &context.tracestate, opening)
    }

    /// Opens a span under this one; `opening` runs as in [`Self::follow`].
    pub fn child(&self, opening: impl FnOnce() -> Opening + Send + 'static) -> Self {
        if let Some(pending) = &self.pending {
            let state = pending.context.trace_state().clone();
            return Self::pending(
                Arc::clone(&pending.decider),
                pending.context.trace_id(),
                state,
                Some(pending.context.clone()),
                Box::new(opening),
            );
        }
        if self.span.is_disabled() {
            return Self::none();
        }
        Self {
            span: open(opening(), Some(&self.span)),
            pending: None,
        }
    }

    fn pending(
        decider: Arc<Decider>,
        trace_id: TraceId,
        state: TraceState,
        parent: Option<SpanContext>,
        opener: Opener,
    ) -> Self {
        let context = SpanContext::new(
            trace_id,
            decider.ids.new_span_id(),
            TraceFlags::default(),
            false,
            state,
        );
        Self {
            span: Span::none(),
            pending: Some(Arc::new(Pending {
                decider,
                context,
                parent,
                start: SystemTime::now(),
                state: Mutex::new(PendingState {
                    opener: Some(opener),
                    name: None,
                    attributes: Vec::new(),
                }),
            })),
        }
    }

    /// Whether nothing is recorded: tracing is off. Callers skip building
    /// attribute values then.
    pub fn is_off(&self) -> bool {
        self.pending.is_none() && self.span.is_disabled()
    }

    /// Whether the span is recorded and exported whatever its outcome (its
    /// trace is sampled); an unsampled span is exported only if it fails,
    /// so what only a success would show need not be recorded on it.
    pub fn is_sampled(&self) -> bool {
        !self.span.is_disabled()
    }

    /// Sets a string-array attribute (such as
    /// `gen_ai.response.finish_reasons`).
    pub fn record_strings(&self, key: &'static str, values: Vec<String>) {
        let values = values.into_iter().map(Into::into).collect();
        self.record(key, Value::Array(opentelemetry::Array::String(values)));
    }

    /// Renames the span, once what it does is known (`chat gpt-4o`).
    pub fn rename(&self, name: impl Into<Cow<'static, str>>) {
        if let Some(pending) = &self.pending {
            if let Ok(mut state) = pending.state.lock() {
                state.name = Some(name.into());
            }
        } else if !self.span.is_disabled() {
            self.span.record("otel.name", name.into().as_ref());
        }
    }

    /// Sets an attribute on the span.
    pub fn record(&self, key: &'static str, value: impl Into<Value>) {
        if let Some(pending) = &self.pending {
            pending.set(KeyValue::new(key, value));
        } else if !self.span.is_disabled() {
            self.span.set_attribute(key, value);
        }
    }

    /// Marks the span failed with an error class (`error.type`): a recorded
    /// span gets status `ERROR`; an unsampled one is exported now, ending
    /// here, with what was recorded on it so far.
    pub fn fail(&self, class: &str) {
        if let Some(pending) = &self.pending {
            pending.export(class);
        } else if !self.span.is_disabled() {
            self.span.set_attribute("error.type", class.to_owned());
            self.span.set_status(Status::error(class.to_owned()));
        }
    }

    /// Makes `context` name this span as the parent of the hops below.
    /// Nothing happens when tracing is off: the context keeps what it
    /// carries.
    pub fn hand_on(&self, context: &mut RequestContext) {
        if let Some((traceparent, tracestate)) = self.propagation() {
            context.traceparent = traceparent;
            context.tracestate = tracestate;
        }
    }

    /// The W3C `traceparent` and `tracestate` naming this span; `None`
    /// when tracing is off.
    pub fn propagation(&self) -> Option<(String, String)> {
        fn written(span_context: &SpanContext) -> Option<(String, String)> {
            span_context.is_valid().then(|| {
                let state = span_context.trace_state();
                let state = if *state == TraceState::NONE {
                    String::new()
                } else {
                    state.header()
                };
                (traceparent(span_context), state)
            })
        }
        if let Some(pending) = &self.pending {
            written(&pending.context)
        } else if self.span.is_disabled() {
            None
        } else {
            written(self.span.context().span().span_context())
        }
    }
}

/// A `tracing` span for `opening`, under `parent` or the current span.
fn open(opening: Opening, parent: Option<&Span>) -> Span {
    let kind = match opening.kind {
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Internal => "internal",
    };
    let span = match parent {
        Some(parent) => tracing::info_span!(
            target: TARGET,
            parent: parent,
            "hop",
            otel.name = %opening.name,
            otel.kind = kind,
        ),
        None => tracing::info_span!(
            target: TARGET,
            parent: None,
            "hop",
            otel.name = %opening.name,
            otel.kind = kind,
        ),
    };
    for KeyValue { key, value, .. } in opening.attributes {
        span.set_attribute(key, value);
    }
    span
}

impl Pending {
    fn set(&self, attribute: KeyValue) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let attributes = &mut state.attributes;
        if let Some(existing) = attributes.iter_mut().find(|kept| kept.key == attribute.key) {
            *existing = attribute;
        } else {
            attributes.push(attribute);
        }
    }

    /// Sends the span, failed with `class`, to the exporter; once.
    fn export(&self, class: &str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let Some(opener) = state.opener.take() else {
            return;
        };
        let renamed = state.name.take();
        let recorded = std::mem::take(&mut state.attributes);
        drop(state);
        let Opening {
            name,
            kind,
            mut attributes,
        } = opener();
        attributes.extend(recorded);
        attributes.push(KeyValue::new("error.type", class.to_owned()));
        self.decider.export(SpanData {
            span_context: self.context.clone(),
            parent_span_id: self
                .parent
                .as_ref()
                .map_or(SpanId::INVALID, SpanContext::span_id),
            parent_span_is_remote: self.parent.as_ref().is_some_and(SpanContext::is_remote),
            span_kind: kind,
            name: renamed.unwrap_or(name),
            start_time: self.start,
            end_time: SystemTime::now(),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::error(class.to_owned()),
            instrumentation_scope: self.decider.scope.clone(),
        });
    }
}

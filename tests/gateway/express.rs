//! Placeholder: the Express upstream test comes with examples/express-upstream/.

//! The privileges flixops's role needs, and the grants Snowflake shows it holds. One role owns
//! every object flixops creates; besides ownership it needs a warehouse to use and, until it owns
//! the storage integration, CREATE INTEGRATION. `SHOW GRANTS TO ROLE` lists a role's own grants and
//! the roles granted to it, which are followed, so inherited privileges count
//! (https://docs.snowflake.com/en/sql-reference/sql/show-grants).

use super::client::{Client, Row, SnowflakeError};
use super::ident::Ident;
use super::names::SnowNames;
use super::text;

/// Roles followed through `GRANT ROLE … TO ROLE …` at most, so a deep hierarchy stays a few queries.
const MAX_ROLES: usize = 20;

/// One row of `SHOW GRANTS TO ROLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `USAGE`, `OWNERSHIP`, `CREATE INTEGRATION`, …
    pub privilege: String,
    /// `ACCOUNT`, `WAREHOUSE`, `DATABASE`, `INTEGRATION`, `PIPE`, `TABLE`, `ROLE`, …
    pub granted_on: String,
    /// The object, as SHOW GRANTS names it (`DB.SCHEMA.NAME` for schema objects).
    pub name: String,
}

impl Grant {
    fn from_row(row: &Row) -> Self {
        let upper = |column: &str| text(row, column).to_ascii_uppercase();
        Self { privilege: upper("privilege"), granted_on: upper("granted_on"), name: text(row, "name") }
    }

    /// True when this grant is `privilege` on `kind` `name` (an empty `name`: any object of the kind).
    fn is(&self, privilege: &str, kind: &str, name: &str) -> bool {
        let same_name = name.is_empty() || self.name.replace('"', "").eq_ignore_ascii_case(name);
        (privilege == "*" || self.privilege == privilege) && self.granted_on == kind && same_name
    }
}

/// A privilege flixops needs, the grants that provide it, and the statement that grants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// What it is for, as doctor names it.
    pub what: String,
    /// Any one of these `(privilege, granted_on, name)` suffices; `*` is any privilege.
    pub any_of: Vec<(String, String, String)>,
    /// The GRANT that provides it.
    pub grant: String,
}

/// The role the session runs as.
pub async fn current_role(client: &Client) -> Result<String, SnowflakeError> {
    let rows = client.query("SELECT CURRENT_ROLE() AS ROLE").await?;
    Ok(rows.first().map(|r| text(r, "ROLE")).unwrap_or_default())
}

/// The grants of `role` and of every role granted to it (breadth first, at most [`MAX_ROLES`]).
pub async fn grants_of(client: &Client, role: &str) -> Result<Vec<Grant>, SnowflakeError> {
    let (mut seen, mut queue, mut grants) = (vec![role.to_string()], vec![role.to_string()], Vec::new());
    while let Some(next) = queue.pop() {
        let rows = client.query(&format!("SHOW GRANTS TO ROLE {}", quoted(&next))).await?;
        for grant in rows.iter().map(Grant::from_row) {
            let inherited = grant.granted_on == "ROLE" && grant.privilege == "USAGE";
            if inherited && !seen.contains(&grant.name) && seen.len() < MAX_ROLES {
                seen.push(grant.name.clone());
                queue.insert(0, grant.name.clone());
            }
            grants.push(grant);
        }
    }
    Ok(grants)
}

/// A role name in SQL: plain when it is a plain identifier, else double-quoted as it is.
fn quoted(role: &str) -> String {
    match Ident::new(role) {
        Ok(ident) if ident.name() == role => ident.to_string(),
        _ => format!("\"{}\"", role.replace('"', "\"\"")),
    }
}

/// What the environment's role needs: the warehouse, the database, the integration (owned, or
/// CREATE INTEGRATION to create it), and what doctor reads (MONITOR on the pipe for
/// SYSTEM$PIPE_STATUS; a privilege on the raw table, or MONITOR on the account, for COPY_HISTORY).
pub fn needs(names: &SnowNames, role: &str) -> Vec<Need> {
    let to = format!("TO ROLE {}", quoted(role));
    let need = |what: &str, any_of: &[(&str, &str, String)], grant: String| Need {
        what: what.to_string(),
        any_of: any_of.iter().map(|(p, k, n)| (p.to_string(), k.to_string(), n.clone())).collect(),
        grant,
    };
    let (warehouse, database) = (names.warehouse.name().to_string(), names.database.name().to_string());
    let (integration, pipe, table) = (names.integration.name().to_string(), names.pipe.plain(), names.table.plain());
    vec![
        need(
            &format!("USAGE on warehouse {warehouse}"),
            &[("USAGE", "WAREHOUSE", warehouse.clone()), ("OWNERSHIP", "WAREHOUSE", warehouse.clone())],
            format!("GRANT USAGE ON WAREHOUSE {} {to}", names.warehouse),
        ),
        need(
            &format!("OWNERSHIP of database {database}"),
            &[("OWNERSHIP", "DATABASE", database.clone())],
            format!("GRANT OWNERSHIP ON DATABASE {} {to} COPY CURRENT GRANTS", names.database),
        ),
        need(
            &format!("OWNERSHIP of integration {integration}, or CREATE INTEGRATION"),
            &[("OWNERSHIP", "INTEGRATION", integration.clone()), ("CREATE INTEGRATION", "ACCOUNT", String::new())],
            format!("GRANT CREATE INTEGRATION ON ACCOUNT {to}"),
        ),
        need(
            &format!("MONITOR on pipe {pipe}"),
            &[("OWNERSHIP", "PIPE", pipe.clone()), ("MONITOR", "PIPE", pipe.clone())],
            format!("GRANT MONITOR ON PIPE {} {to}", names.pipe),
        ),
        need(
            &format!("a privilege on table {table}, or MONITOR on the account (COPY_HISTORY)"),
            &[("*", "TABLE", table.clone()), ("MONITOR", "ACCOUNT", String::new())],
            format!("GRANT SELECT ON TABLE {} {to}", names.table),
        ),
    ]
}

/// Why the session's role cannot create the storage integration, with the GRANT that fixes it
/// (only ACCOUNTADMIN holds CREATE INTEGRATION by default); None when it can.
pub async fn cannot_create_integration(client: &Client, integration: &Ident) -> Result<Option<String>, SnowflakeError> {
    let role = current_role(client).await?;
    let held = grants_of(client, &role).await?;
    let create = ("CREATE INTEGRATION", "ACCOUNT", "");
    if role.eq_ignore_ascii_case("ACCOUNTADMIN") || held.iter().any(|g| g.is(create.0, create.1, create.2)) {
        return Ok(None);
    }
    let integration = integration.name();
    Ok(Some(format!(
        "role {role} cannot create storage integration {integration}: it lacks CREATE INTEGRATION on the account; \
         as ACCOUNTADMIN run `GRANT CREATE INTEGRATION ON ACCOUNT TO ROLE {}`, or create the integration as \
         ACCOUNTADMIN and grant its OWNERSHIP to {role}",
        quoted(&role)
    )))
}

/// The needs no grant provides.
pub fn missing<'a>(needs: &'a [Need], grants: &[Grant]) -> Vec<&'a Need> {
    needs.iter().filter(|n| !n.any_of.iter().any(|(p, k, name)| grants.iter().any(|g| g.is(p, k, name)))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AwsSnowflakeTarget;

    fn grant(privilege: &str, on: &str, name: &str) -> Grant {
        Grant { privilege: privilege.into(), granted_on: on.into(), name: name.into() }
    }

    #[test]
    fn a_need_is_met_by_any_of_its_grants_and_names_its_fix() {
        let target = AwsSnowflakeTarget::for_tests();
        let names = SnowNames::new("acme", "prod", &target).unwrap();
        let needs = needs(&names, "DEPLOYER");
        let owner = [
            grant("OWNERSHIP", "DATABASE", "ACME"),
            grant("OWNERSHIP", "INTEGRATION", "ACME_PROD_LAKE"),
            grant("OWNERSHIP", "PIPE", "ACME.RAW.TWEETS_PIPE"),
            grant("OWNERSHIP", "TABLE", "ACME.RAW.TWEETS_RAW"),
        ];
        let lacking: Vec<&str> = missing(&needs, &owner).iter().map(|n| n.grant.as_str()).collect();
        assert_eq!(lacking, ["GRANT USAGE ON WAREHOUSE \"WH\" TO ROLE \"DEPLOYER\""]);
        let mut all = owner.to_vec();
        all.push(grant("USAGE", "WAREHOUSE", "WH"));
        assert!(missing(&needs, &all).is_empty());
        let before_first_deploy = [grant("CREATE INTEGRATION", "ACCOUNT", "FAKE"), grant("USAGE", "WAREHOUSE", "WH")];
        let lacking: Vec<&str> = missing(&needs, &before_first_deploy).iter().map(|n| n.what.as_str()).collect();
        assert!(!lacking.iter().any(|w| w.contains("integration")), "{lacking:?}");
        assert_eq!(quoted("my role"), "\"my role\"");
    }
}

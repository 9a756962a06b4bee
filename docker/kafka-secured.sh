#!/bin/sh
# Entry point of the compose broker: SASL/SCRAM-SHA-512 over TLS for clients and the inter-broker
# traffic, mutual TLS on the controller listener, StandardAuthorizer, no ACL = no access, no topic
# auto-creation (the same settings as gateway/broker/local.py). The security material (CA, broker
# key, SCRAM secrets) comes from the `kafka-security` init service, 0600, owned by this user.
set -eu
S=/kafka-security
DATA=${GP_KAFKA_DATA:-/var/lib/kafka/data}
C=$DATA/../config
# testcontainers learns its mapped port after the start: it writes the advertised listeners here
if [ -n "${GP_ADVERTISED_FILE:-}" ]; then
  while [ ! -s "$GP_ADVERTISED_FILE" ]; do sleep 0.1; done
  GP_ADVERTISED=$(cat "$GP_ADVERTISED_FILE")
fi
ADVERTISED=${GP_ADVERTISED:-BROKER://kafka:19093,HOST://localhost:9092}
mkdir -p "$C" "$DATA"
umask 077
BROKER_SECRET=$(cat "$S/broker.secret")
ADMIN_SECRET=$(cat "$S/admin.secret")
cat > "$C/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
controller.listener.names=CONTROLLER
listeners=BROKER://0.0.0.0:19093,HOST://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093
advertised.listeners=$ADVERTISED
inter.broker.listener.name=BROKER
listener.security.protocol.map=BROKER:SASL_SSL,HOST:SASL_SSL,CONTROLLER:SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.broker.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="$BROKER_SECRET";
listener.name.controller.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([A-Za-z0-9._-]+)$/\$1/,DEFAULT
ssl.keystore.type=PEM
ssl.keystore.location=$S/server.pem
ssl.truststore.type=PEM
ssl.truststore.location=$S/ca.pem
ssl.endpoint.identification.algorithm=https
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:broker;User:gateway-admin
auto.create.topics.enable=false
log.dirs=$DATA
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
if [ ! -f "$DATA/meta.properties" ]; then
  /opt/kafka/bin/kafka-storage.sh format -t "$(/opt/kafka/bin/kafka-storage.sh random-uuid)" -c "$C/server.properties" \
    --add-scram "SCRAM-SHA-512=[name=broker,password=$BROKER_SECRET]" \
    --add-scram "SCRAM-SHA-512=[name=gateway-admin,password=$ADMIN_SECRET]" >/dev/null
fi
unset BROKER_SECRET ADMIN_SECRET
exec /opt/kafka/bin/kafka-server-start.sh "$C/server.properties"

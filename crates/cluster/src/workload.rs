//! What the checks run on the cluster, as a user would write it: in
//! namespace `ferry-lab`, a Deployment of toolbox pods spread over every
//! node (topology spread, one node's skew at most 1) each serving its own
//! name over HTTP on 8080, a NodePort Service in front of them, and one
//! pod with a hostPort.

use crate::images::TOOLBOX_IMAGE;

pub const NAMESPACE: &str = "ferry-lab";
pub const DEPLOYMENT: &str = "toolbox";
pub const SERVICE: &str = "toolbox";
pub const HOSTPORT_POD: &str = "hostport";
pub const HTTP_PORT: u16 = 8080;
pub const SERVICE_PORT: u16 = 80;
pub const NODE_PORT: u16 = 30080;
pub const HOST_PORT: u16 = 18080;
/// Label of every pod of the Deployment.
pub const APP_LABEL: &str = "app=toolbox";
/// The pod-churn Deployment and its pods' label.
pub const CHURN: &str = "churn";
pub const CHURN_LABEL: &str = "app=churn";

/// The toolbox's command: an HTTP server answering with the pod's name.
const SERVE: &str = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www";

/// Namespace, Deployment (`replicas`), Service and the hostPort pod.
pub fn manifest(replicas: usize) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {DEPLOYMENT}
  namespace: {NAMESPACE}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: toolbox
  template:
    metadata:
      labels:
        app: toolbox
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        labelSelector:
          matchLabels:
            app: toolbox
      tolerations:
      - operator: Exists
      containers:
      - name: toolbox
        image: {TOOLBOX_IMAGE}
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "{SERVE}"]
        ports:
        - containerPort: {HTTP_PORT}
          name: http
        readinessProbe:
          tcpSocket:
            port: {HTTP_PORT}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: {SERVICE}
  namespace: {NAMESPACE}
spec:
  type: NodePort
  selector:
    app: toolbox
  ports:
  - port: {SERVICE_PORT}
    targetPort: {HTTP_PORT}
    nodePort: {NODE_PORT}
---
apiVersion: v1
kind: Pod
metadata:
  name: {HOSTPORT_POD}
  namespace: {NAMESPACE}
  labels:
    app: hostport
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: toolbox
    image: {TOOLBOX_IMAGE}
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "{SERVE}"]
    ports:
    - containerPort: {HTTP_PORT}
      hostPort: {HOST_PORT}
"#
    )
}

/// `replicas` toolbox pods that only sleep, spread over the nodes (the
/// pod-churn scenario and the pod-startup bench).
pub fn churn(replicas: usize) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {CHURN}
  namespace: {NAMESPACE}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: churn
  template:
    metadata:
      labels:
        app: churn
    spec:
      terminationGracePeriodSeconds: 0
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: ScheduleAnyway
        labelSelector:
          matchLabels:
            app: churn
      tolerations:
      - operator: Exists
      containers:
      - name: sleep
        image: {TOOLBOX_IMAGE}
        imagePullPolicy: IfNotPresent
        command: ["sleep", "3600"]
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_over_nodes_and_names_the_local_images() {
        let m = manifest(6);
        assert!(m.contains("replicas: 6"));
        assert!(m.contains("topologyKey: kubernetes.io/hostname"));
        assert!(m.contains("image: localhost/ferry-lab/toolbox:1"));
        assert!(m.contains("nodePort: 30080") && m.contains("hostPort: 18080"));
        assert_eq!(m.matches("imagePullPolicy: IfNotPresent").count(), 2);
    }
}

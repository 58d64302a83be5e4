package msg_test

import (
	"fmt"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/msg"
)

// Seal a message for a node's key record and open it on the other side.
func Example() {
	aliceKey, _ := core.GenerateSecretKey()
	bobKey, _ := core.GenerateSecretKey()
	bob, _ := msg.KeyFromNodeKey(bobKey) // bob's message key; bob.Record() is what bob serves

	env, err := msg.Seal(aliceKey, bob.Record(), &msg.Message{ContentType: "text/plain", Body: []byte("hi bob")})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(env) == msg.Buckets[0]+msg.Overhead) // sizes reveal only the bucket

	m, err := msg.Open(bob, env)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(m.Body), m.Sender == aliceKey.NodeID())
	// Output:
	// true
	// hi bob true
}
